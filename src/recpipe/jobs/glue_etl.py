"""AWS Glue 5.0 job (Spark 3.5.4, Python 3.11): the spark engine of ``recpipe etl run``.

Job arguments (``getResolvedOptions``)::

    --JOB_NAME                   set by Glue
    --connection_name NAME       a Glue JDBC connection to the source database, or
    --source_url URL             a source URL as RECPIPE_SOURCE_URL takes it
    --lake_url s3://bucket/lake  where ratings_ml_training is published
    --recommendations_url URL    optional: the recs bucket (s3://…) whose delivered and served
                                 lines then become the lake's events and impressions
    --max_quarantine_fraction F  optional, default 0.05
    --layout partitioned|compact optional, default partitioned (``contracts.dataset.LAYOUTS``)
    --jdbc_driver CLASS          optional; on Glue the MySQL Connector/J Glue ships
                                 (com.mysql.cj.jdbc.Driver), locally MariaDB's

Locally the same script runs under ``spark-submit`` (``awsglue`` is then absent and the
arguments are parsed with argparse under the same names)::

    spark-submit --jars /usr/share/java/mariadb-java-client.jar \\
        src/recpipe/jobs/glue_etl.py --JOB_NAME local --source_url mysql+pymysql://… --lake_url /tmp/lake
"""

from __future__ import annotations

import argparse
import json
import sys
from typing import TYPE_CHECKING

from sqlalchemy.engine import URL

if TYPE_CHECKING:
    from recpipe.contracts.dataset import DatasetManifest

REQUIRED = ["JOB_NAME", "lake_url"]
OPTIONAL = ["connection_name", "source_url", "max_quarantine_fraction", "jdbc_driver", "recommendations_url", "layout"]
GLUE_MYSQL_DRIVER = "com.mysql.cj.jdbc.Driver"  # on Glue's class path; MariaDB's driver is not
_DRIVERS = {"mysql": "mysql+pymysql", "mariadb": "mysql+pymysql", "postgresql": "postgresql",
            "sqlite": "sqlite"}


def parse_arguments(argv: list[str]) -> dict[str, str]:
    """Glue's ``getResolvedOptions`` where it exists, else argparse with the same names."""
    try:
        from awsglue.utils import getResolvedOptions
    except ImportError:
        parser = argparse.ArgumentParser(description="recpipe ETL (the Glue job), run locally")
        for name in REQUIRED:
            parser.add_argument(f"--{name}", required=True)
        for name in OPTIONAL:
            parser.add_argument(f"--{name}")
        args, _unknown = parser.parse_known_args(argv[1:])
        return {k: v for k, v in vars(args).items() if v is not None}
    present = [name for name in OPTIONAL if f"--{name}" in argv]
    return getResolvedOptions(argv, REQUIRED + present)


def source_url_from_jdbc(conf: dict[str, str]) -> str:
    """A Glue connection's JDBC settings as a source URL (``jdbc:mysql://h:3306/db`` ->
    ``mysql+pymysql://user:pass@h:3306/db``)."""
    jdbc = conf.get("fullUrl") or conf["url"]
    scheme, _, rest = jdbc.removeprefix("jdbc:").partition("://")
    hostport, _, database = rest.partition("/")
    host, _, port = hostport.partition(":")
    return URL.create(_DRIVERS.get(scheme, scheme), username=conf.get("user"),
                      password=conf.get("password"), host=host, port=int(port) if port else None,
                      database=database.split("?")[0] or None).render_as_string(hide_password=False)


def main(argv: list[str] | None = None) -> DatasetManifest:
    from recpipe.adapters import open_lake, open_source
    from recpipe.errors import InputError
    from recpipe.etl.pipeline import run as run_etl

    argv = list(sys.argv if argv is None else argv)
    args = parse_arguments(argv)
    job = None
    try:
        from awsglue.context import GlueContext
        from awsglue.job import Job
        from pyspark.context import SparkContext

        glue = GlueContext(SparkContext.getOrCreate())
        spark = glue.spark_session
        job = Job(glue)
        job.init(args["JOB_NAME"], args)
        if "connection_name" in args:
            args["source_url"] = source_url_from_jdbc(glue.extract_jdbc_conf(args["connection_name"]))
    except ImportError:
        from recpipe.config import load_settings
        from recpipe.etl.spark_engine import local_session

        local = load_settings()
        spark = local_session(f"recpipe-etl-{args['JOB_NAME']}", master=local.spark_master,
                              driver_memory=local.spark_driver_memory, jars=local.spark_jars)
    if "source_url" not in args:
        raise InputError("the Glue job needs --connection_name or --source_url",
                         hint="set one of them in the job's default arguments")
    source = open_source(args["source_url"], setting="--source_url")
    if hasattr(source, "jdbc_driver") and (job is not None or "jdbc_driver" in args):
        source.jdbc_driver = args.get("jdbc_driver", GLUE_MYSQL_DRIVER)
    manifest = run_etl(source,
                       open_lake(args["lake_url"], setting="--lake_url"), engine="spark",
                       max_quarantine_fraction=float(args.get("max_quarantine_fraction", 0.05)),
                       spark=spark, remote_staging=job is not None and args["lake_url"].startswith("s3://"),
                       layout=args.get("layout", "partitioned"))
    summary = {k: getattr(manifest, k) for k in ("version", "rows", "partitions", "location")}
    if "recommendations_url" in args:  # the online datasets, on the same Spark (recpipe.etl.online)
        from recpipe.adapters import open_recommendations
        from recpipe.etl.online import run as run_online

        online = run_online(open_recommendations(args["recommendations_url"], setting="--recommendations_url"),
                            open_lake(args["lake_url"], setting="--lake_url"), engine="spark", spark=spark)
        summary["events"] = online.totals()
    print(json.dumps(summary))
    if job is not None:
        job.commit()
    return manifest


if __name__ == "__main__":
    main()
