"""The eventsourcing library's own recorder contract suites, against PostgreSQL as the platform configures it."""

from __future__ import annotations

from typing import Any

import pytest
from eventsourcing.persistence import (
    AggregateRecorder,
    ApplicationRecorder,
    InfrastructureFactory,
    ProcessRecorder,
    TrackingRecorder,
)
from eventsourcing.postgres import (
    PostgresAggregateRecorder,
    PostgresFactory,
    PostgresProcessRecorder,
    PostgresTrackingRecorder,
)
from eventsourcing.tests.persistence import (
    AggregateRecorderTestCase,
    ApplicationRecorderTestCase,
    InfrastructureFactoryTestCase,
    NonInterleavingNotificationIDsBaseCase,
    ProcessRecorderTestCase,
    TrackingRecorderTestCase,
)
from eventsourcing.utils import Environment

from adapters.event_store.application import STORE_NAME, postgres_env
from adapters.event_store.recorder import LockingPostgresApplicationRecorder

pytestmark = [pytest.mark.integration, pytest.mark.usefixtures("platform_env")]


@pytest.fixture
def platform_env(request: pytest.FixtureRequest, database_url: str, pg_schema: str) -> None:
    """The environment the platform gives the library, in a schema of the test's own."""
    request.instance.platform_env = Environment(STORE_NAME, postgres_env(database_url, schema=pg_schema))


class PlatformFactory:
    platform_env: Environment
    factories: list[InfrastructureFactory[Any]]

    def factory(self) -> InfrastructureFactory[Any]:
        made = InfrastructureFactory.construct(self.platform_env)
        self.__dict__.setdefault("factories", []).append(made)
        return made

    def tearDown(self) -> None:
        for made in self.__dict__.get("factories", []):
            made.close()


class TestAggregateRecorder(PlatformFactory, AggregateRecorderTestCase):
    def create_recorder(self) -> AggregateRecorder:
        return self.factory().aggregate_recorder()


class TestApplicationRecorder(PlatformFactory, ApplicationRecorderTestCase[ApplicationRecorder]):
    EXPECT_CONTIGUOUS_NOTIFICATION_IDS = False  # a rolled-back insert burns ids; the platform never waits on gaps

    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()


class TestNonInterleavingNotificationIDs(PlatformFactory, NonInterleavingNotificationIDsBaseCase):
    def create_recorder(self) -> ApplicationRecorder:
        return self.factory().application_recorder()


class TestTrackingRecorder(PlatformFactory, TrackingRecorderTestCase):
    def create_recorder(self) -> TrackingRecorder:
        recorder: TrackingRecorder = self.factory().tracking_recorder()
        return recorder


class TestProcessRecorder(PlatformFactory, ProcessRecorderTestCase):
    """The platform does not use the process recorder: its projectors track positions themselves.

    On the library's one-call insert path the process recorder drops the tracking record (this
    suite fails there), so should it ever be used, it must run on the plain path, tested here.
    """

    def create_recorder(self) -> ProcessRecorder:
        plain = {**self.platform_env, "POSTGRES_ENABLE_DB_FUNCTIONS": "n"}
        plain.pop("APPLICATION_RECORDER_TOPIC")
        made = InfrastructureFactory.construct(Environment(STORE_NAME, plain))
        self.__dict__.setdefault("factories", []).append(made)
        return made.process_recorder()


class TestInfrastructureFactory(InfrastructureFactoryTestCase[PostgresFactory]):
    platform_env: Environment

    def setUp(self) -> None:
        self.env = self.platform_env
        super().setUp()

    def expected_factory_class(self) -> type[PostgresFactory]:
        return PostgresFactory

    def expected_aggregate_recorder_class(self) -> type[AggregateRecorder]:
        return PostgresAggregateRecorder

    def expected_application_recorder_class(self) -> type[ApplicationRecorder]:
        return LockingPostgresApplicationRecorder

    def expected_tracking_recorder_class(self) -> type[TrackingRecorder]:
        return PostgresTrackingRecorder

    def tracking_recorder_subclass(self) -> type[TrackingRecorder]:
        class CustomTrackingRecorder(PostgresTrackingRecorder):
            pass

        return CustomTrackingRecorder

    def expected_process_recorder_class(self) -> type[ProcessRecorder]:
        return PostgresProcessRecorder
