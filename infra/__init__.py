"""Starting, stopping and checking the real local services: Kafka (from Maven jars) and ClickHouse."""

from infra.services import Service, all_services

__all__ = ["Service", "all_services"]
