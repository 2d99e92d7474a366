"""The cloud bridge: outbox publisher and command handling over MQTT 5 (docs/adr/0030-0036)."""
from cloud_bridge.bridge import Bridge, Topics
from cloud_bridge.commands import CommandError, CommandRouter, Route
from cloud_bridge.config import ConfigCommand, apply_stored_overrides

__all__ = ["Bridge", "CommandError", "CommandRouter", "ConfigCommand", "Route", "Topics",
           "apply_stored_overrides"]
