from edge.storage.audit import Actor, audit
from edge.storage.db import Database, StorageFull
from edge.storage.models import AuditEntry, Base, KeyValue, OutboxEvent
from edge.storage.outbox import Priority, record_event

__all__ = [
    "Actor", "AuditEntry", "Base", "Database", "KeyValue", "OutboxEvent", "Priority",
    "StorageFull", "audit", "record_event",
]
