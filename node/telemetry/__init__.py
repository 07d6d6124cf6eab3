"""Telemetry of a running node: MQTT publisher, in-process broker, HTTP status and Prometheus metrics.

Everything here runs in the node's asyncio side-loop (see ``node.sideloop``);
the training thread hands it plain values and never waits on the network.
"""
