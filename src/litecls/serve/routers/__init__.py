"""The service's endpoints, one module per group: health, models, classify, web (page + WebSocket)."""
