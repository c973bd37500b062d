"""The core layer every component builds on: settings, event schemas and topics, the
feature definition, errors, and the Kafka/Redis clients. It imports no component
(`lint-imports` checks the layers in `make test`)."""
