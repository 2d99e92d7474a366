"""The parcel locker: courier deposits, resident pickups, door monitoring, diagnostics."""
