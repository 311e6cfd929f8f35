"""A small asset graph for the multiprocess-executor test (importable by the step processes):
each asset records the pid of the process that ran its step."""

import os

import dagster as dg

from pipelines.definitions import build_executor


@dg.asset
def source_pid(context: dg.AssetExecutionContext) -> int:
    context.add_output_metadata({"pid": os.getpid()})
    return os.getpid()


@dg.asset
def left(context: dg.AssetExecutionContext, source_pid: int) -> int:
    context.add_output_metadata({"pid": os.getpid(), "upstream_pid": source_pid})
    return os.getpid()


@dg.asset
def right(context: dg.AssetExecutionContext, source_pid: int) -> int:
    context.add_output_metadata({"pid": os.getpid(), "upstream_pid": source_pid})
    return os.getpid()


def get_job() -> dg.JobDefinition:
    defs = dg.Definitions(assets=[source_pid, left, right],
                          jobs=[dg.define_asset_job("mp_graph", selection="*")],
                          executor=build_executor())
    return defs.resolve_job_def("mp_graph")
