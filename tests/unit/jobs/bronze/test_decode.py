"""Bronze's decode plan: the reader schema flags every record it decoded."""

from __future__ import annotations

import json

from k2.jobs.bronze.decode import DECODED_FLAG, flagged_reader
from k2.schemas import schema_json


def test_the_decoded_flag_defaults_to_true() -> None:
    """The reader schema Bronze decodes with flags every record it decoded, so a record it could not
    decode is told apart."""
    reader = json.loads(flagged_reader(json.dumps(schema_json("kraken_raw"))))
    assert reader["fields"][-1] == {"name": DECODED_FLAG, "type": "boolean", "default": True}
