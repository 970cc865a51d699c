"""The event bus: RabbitMQ in distributed mode, an in-process twin in embedded mode; one interface."""
