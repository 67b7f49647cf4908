"""Behavior policies that generate marlkit's datasets (scripted ones live with their environments).

:mod:`marlkit.behavior.weights` reads the shipped multi-agent MuJoCo actors and their cards (it depends only on
:mod:`marlkit.nets`, so environments and dataset builders can use it); :mod:`marlkit.behavior.td3` trains them.
"""
