"""Stand-ins for the station's hardware, speaking the real wire protocols."""
