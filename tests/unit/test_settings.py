import pytest

from python_steps.settings import dbt_env, dbt_profile_vars, load_settings, pg_options, url_parts


def test_url_parts_full():
    p = url_parts("postgresql://alice:s%40cret@db.example:6543/warehouse")
    assert (p.host, p.port, p.user, p.password, p.dbname) == (
        "db.example",
        6543,
        "alice",
        "s@cret",
        "warehouse",
    )


def test_url_parts_defaults_and_socket_host():
    p = url_parts("postgresql:///patas?host=/var/run/postgresql")
    assert (p.host, p.port, p.user, p.dbname) == ("/var/run/postgresql", 5432, "postgres", "patas")


def test_url_parts_rejects_other_schemes():
    with pytest.raises(ValueError, match="postgresql://"):
        url_parts("mysql://root@localhost/db")


def test_dbt_env_carries_every_profile_value():
    env = dbt_env("postgresql://u:p@h:1234/d", base={})
    assert env["PATAS_PG_HOST"] == "h" and env["PATAS_PG_PORT"] == "1234"
    assert env["PATAS_PG_USER"] == "u" and env["PATAS_PG_PASSWORD"] == "p" and env["PATAS_PG_DBNAME"] == "d"
    assert env["DBT_PROFILES_DIR"].endswith("profiles")


def test_dbt_profile_vars_are_the_profiles_and_libpqs_only():
    env = dbt_env("postgresql://u:p@h:1234/d", base={"PATH": "/bin", "DBT_LOG_LEVEL": "warn", "HOME": "/r"})
    vars_ = dbt_profile_vars(env)
    assert set(vars_) == {
        "PATAS_PG_HOST", "PATAS_PG_PORT", "PATAS_PG_USER", "PATAS_PG_PASSWORD", "PATAS_PG_DBNAME",
        "DBT_PROFILES_DIR", "DBT_INDIRECT_SELECTION", "DBT_LOG_LEVEL", "PGOPTIONS",
    }  # fmt: skip
    assert vars_["PATAS_PG_DBNAME"] == "d" and vars_["PGOPTIONS"] == "-c jit=off"


def test_dbt_env_turns_jit_off_and_keeps_the_users_pgoptions():
    assert dbt_env("postgresql://u@h/d", base={})["PGOPTIONS"] == "-c jit=off"
    assert dbt_env("postgresql://u@h/d", base={"PGOPTIONS": "-c work_mem=64MB"})["PGOPTIONS"] == (
        "-c work_mem=64MB -c jit=off"
    )
    # a user who sets jit keeps it
    for own in ("-c jit=on", "-cjit=on -c geqo=off", "--jit=on", "-c geqo=off -c jit=on"):
        assert pg_options(own) == own
    assert pg_options("-c jit_above_cost=10") == "-c jit_above_cost=10 -c jit=off"


def test_settings_from_environment(tmp_path):
    s = load_settings({"PATAS_HOME": str(tmp_path), "PATAS_PROFILE": "balanced", "PATAS_LLM_ENABLED": "true"})
    assert s.embedded and s.home == tmp_path and s.profile == "balanced" and s.llm_enabled
    assert s.pgdata == tmp_path / "pgdata"
    s2 = load_settings({"PATAS_DATABASE_URL": "postgresql://x@y/z"})
    assert not s2.embedded and not s2.llm_enabled


def test_masked_url_hides_the_password_and_keeps_the_rest():
    from python_steps.settings import masked_url

    assert masked_url("postgresql://ann:s3cr%40t@db.example:6432/w?sslmode=require") == (
        "postgresql://ann:***@db.example:6432/w?sslmode=require"
    )
    assert masked_url("postgresql://ann@db/w?password=s3cret&sslmode=require") == (
        "postgresql://ann@db/w?password=***&sslmode=require"
    )
    assert masked_url("postgresql://127.0.0.1:5432/postgres") == "postgresql://127.0.0.1:5432/postgres"
