"""The platform side of the stations: ingest of their events into PostgreSQL, replay of
gaps, sealed secrets handed to a notifier, and (later) the staff console.

It shares the wire contract (cloud_bridge/contract) and the logging set-up with the edge;
nothing here imports the edge's storage or services.
"""
