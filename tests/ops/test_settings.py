"""Settings come from AIWP_* variables once; a bad one is named in one line."""

from __future__ import annotations

import pytest

from ops.settings import Settings, SettingsError


def test_no_variables_means_the_embedded_defaults() -> None:
    settings = Settings.from_env({"PATH": "/bin"})
    assert settings.database_url is None
    assert settings.data_dir == ".aiwp"


def test_variables_are_read_and_converted() -> None:
    settings = Settings.from_env(
        {"AIWP_DATABASE_URL": "postgresql://u@h/db", "AIWP_SNAPSHOT_INTERVAL": "25", "AIWP_TEST_DATABASE_URL": "x"}
    )
    assert (settings.database_url, settings.snapshot_interval) == ("postgresql://u@h/db", 25)


@pytest.mark.parametrize(
    ("environ", "message"),
    [
        ({"AIWP_SNAPSHOT_INTERVALL": "5"}, "AIWP_SNAPSHOT_INTERVALL is not a known setting"),
        ({"AIWP_SNAPSHOT_INTERVAL": "many"}, "AIWP_SNAPSHOT_INTERVAL: Expected `int`"),
        ({"AIWP_DB_POOL_SIZE": "1"}, "AIWP_DB_POOL_SIZE: Expected `int` >= 2"),
    ],
)
def test_a_bad_variable_is_named(environ: dict[str, str], message: str) -> None:
    with pytest.raises(SettingsError, match=message.replace("`", ".")):
        Settings.from_env(environ)


def test_a_price_table_from_settings_replaces_the_default() -> None:
    from decimal import Decimal

    from ops.prices import DEFAULT_PRICES, price_table

    assert price_table(None) is DEFAULT_PRICES
    custom = price_table(
        '{"currency": "EUR", "prices": {"openai/*": {"input_per_million": "1", "output_per_million": "2"}}}'
    )
    assert custom.currency == "EUR"
    assert custom.cost("openai", "anything", 1_000_000, 1_000_000) == Decimal("3.00000000")


def test_a_secret_variable_is_left_to_the_secrets_gateway() -> None:
    settings = Settings.from_env({"AIWP_AUDIT_SIGNING_KEY": "c2VjcmV0", "AIWP_AUDIT_CHECKPOINTS": "s3://audit/prod"})
    assert settings.audit_checkpoints == "s3://audit/prod"
    assert "c2VjcmV0" not in repr(settings)
