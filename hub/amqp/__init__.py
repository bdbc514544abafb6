"""RabbitMQ through aio-pika: topology declared in one place, confirmed publishing, pull."""
