"""Loggers: Dagster's console logger, and a file logger so a run's full log (dbt included) can go to
a file under $PATAS_HOME/logs while the terminal shows only the run's summary."""

import logging

import dagster as dg


@dg.logger(
    config_schema={
        "path": dg.Field(str),
        "log_level": dg.Field(str, default_value="INFO", is_required=False),
    },
    description="Appends the run's log to a file.",
)
def file_logger(init_context: dg.InitLoggerContext) -> logging.Logger:
    cfg = init_context.logger_config
    logger = logging.getLogger(f"patas.run_log.{cfg['path']}")
    logger.setLevel(cfg["log_level"].upper())
    logger.propagate = False
    if not logger.handlers:
        handler = logging.FileHandler(cfg["path"], encoding="utf-8")
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(message)s"))
        logger.addHandler(handler)
    return logger


loggers = {"console": dg.colored_console_logger, "file": file_logger}
