"""Running a station over the years: backups, updates with rollback, metrics, journald.

Nothing here knows parcels or residents: these modules read the data folder, the database
file and the controller's state the same way for any station.
"""
