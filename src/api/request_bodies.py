"""Reading a request body the protocols share: JSON (UTF-8 only), and texts laid out as rows.

V1's `instances` and MLflow's `instances`, `inputs`, `dataframe_records` and `dataframe_split` hold a
model's input as rows: a text, or an object (a record) whose `text` field is the text. A table with
one column takes that column whatever its name. Every error is a BadRequestError naming the field.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

from src.documents import DocumentError, read_json
from src.errors import BadRequestError, quoted
from src.serving.inference import INPUT_NAME
from src.serving.text_rules import Location, TextLimits, check_batch_size


def parse_json(body: bytes, what: str = "the request") -> Any:
    """The body's JSON value, or BadRequestError saying why not (UTF-8 only: json.loads would also take
    UTF-16 and UTF-32 bytes, which no route accepts)."""
    try:
        return read_json(body, what, max_bytes=len(body))  # the body limit was held as it arrived
    except DocumentError as error:
        raise BadRequestError(error.message) from None


def json_object(body: bytes, what: str = "the request") -> dict[str, Any]:
    """The body's JSON object; BadRequestError for anything else."""
    value = parse_json(body, what)
    if not isinstance(value, dict):
        raise BadRequestError(f"{what} must be a JSON object")
    return value


def text_column(columns: Sequence[Any], loc: Location) -> int:
    """Which of a table's columns holds the text: `text`, or the only one."""
    if INPUT_NAME in columns:
        return list(columns).index(INPUT_NAME)
    if len(columns) == 1:
        return 0
    raise BadRequestError(
        f"the input at {_where(loc)} needs a column named {INPUT_NAME!r} (or only one column); got {quoted(columns)}"
    )


def texts_of_rows(rows: Any, limits: TextLimits, loc: Location) -> list[str]:
    """The texts of a list of rows, each a text or a record with a `text` field (or one field)."""
    if not isinstance(rows, list):
        raise BadRequestError(f"{_where(loc)} must be a list of texts or of records, not {type(rows).__name__}")
    check_batch_size(len(rows), limits, loc)
    texts = []
    for index, row in enumerate(rows):
        if isinstance(row, dict):
            row = row.get(INPUT_NAME, next(iter(row.values())) if len(row) == 1 else None)
            if row is None:
                raise BadRequestError(f"the record at {_where((*loc, index))} has no {INPUT_NAME!r} field")
        if isinstance(row, list) and len(row) == 1:  # a one-column row
            row = row[0]
        if not isinstance(row, str):
            raise BadRequestError(f"{_where((*loc, index))} must be a text, not {type(row).__name__}")
        texts.append(row)
    return texts


def texts_of_columns(columns: Any, limits: TextLimits, loc: Location) -> list[str]:
    """The texts of a table given as columns: `{"text": [...]}` (or one column of any name)."""
    if not isinstance(columns, dict) or not columns:
        raise BadRequestError(f"{_where(loc)} must be an object of columns")
    name = list(columns)[text_column(list(columns), loc)]
    return texts_of_rows(columns[name], limits, (*loc, name))


def texts_of_table(columns: Any, data: Any, limits: TextLimits, loc: Location) -> list[str]:
    """The texts of a table given as column names and rows of values (pandas' `split` orient)."""
    if not isinstance(data, list):
        raise BadRequestError(f"{_where((*loc, 'data'))} must be a list of rows")
    check_batch_size(len(data), limits, (*loc, "data"))
    if columns is None:
        column = 0
    elif isinstance(columns, list):
        column = text_column(columns, (*loc, "columns"))
    else:
        raise BadRequestError(f"{_where((*loc, 'columns'))} must be a list of column names")
    texts = []
    for index, row in enumerate(data):
        if not isinstance(row, list) or len(row) <= column or (columns is not None and len(row) != len(columns)):
            raise BadRequestError(f"row {_where((*loc, 'data', index))} does not fit the columns")
        value = row[column]
        if not isinstance(value, str):
            raise BadRequestError(f"{_where((*loc, 'data', index, column))} must be a text, not {type(value).__name__}")
        texts.append(value)
    return texts


def _where(loc: Location) -> str:
    return ".".join(map(str, loc))
