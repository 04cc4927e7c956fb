"""Frames a micro-batch computes once and reads several times.

A frame read by several writes of a batch is kept in Spark's block store after its first
computation. Kept as a local checkpoint, its lineage is cut once computed: the tasks that read
it afterwards carry only their own stage's plan, not the plans of every step before it (every
exchange's decoding and normalisation), which Spark would otherwise serialise into each task and
each executor deserialise again. A local checkpoint cannot be recomputed when an executor holding
its blocks is lost, so that form is only used where the executors live in the driver's process
(Spark's local mode); elsewhere the frame is persisted and Spark recomputes lost blocks from its
lineage.
"""

from __future__ import annotations

from typing import Any

from pyspark import StorageLevel

LEVEL = StorageLevel.MEMORY_AND_DISK


def kept(frame: Any) -> Any:
    """``frame``, computed by its first action and kept until :func:`release`."""
    if frame.sparkSession.sparkContext.master.startswith("local"):
        return frame.localCheckpoint(eager=False, storageLevel=LEVEL)
    return frame.persist(LEVEL)


def release(frame: Any) -> None:
    """Drop the blocks of a frame returned by :func:`kept`."""
    plan = frame._jdf.queryExecution().analyzed()
    if plan.getClass().getSimpleName() == "LogicalRDD":
        plan.rdd().unpersist(False)
    else:
        frame.unpersist()
