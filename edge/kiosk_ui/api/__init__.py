"""JSON API blueprints (under /api), described by the OpenAPI document at /api/openapi.json."""
