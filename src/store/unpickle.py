"""The child process that unpickles a trusted file (src/store/model_sources.py starts it with limits).

    python -m src.store.unpickle SOURCE TARGET

Loads SOURCE with joblib (which reads plain pickles too), writes the Pipeline in it to TARGET as
skops bytes, and prints {"sklearn_version": ...}: the version the pickle was made with, as
scikit-learn's InconsistentVersionWarning reports it, else this one. A one-line reason on standard
error and status 2 when SOURCE does not hold a Pipeline or cannot be written as skops.
"""

from __future__ import annotations

import json
import sys
import warnings
from collections.abc import Sequence
from pathlib import Path


def main(argv: Sequence[str]) -> int:
    source, target = argv
    import joblib
    import sklearn
    from sklearn.exceptions import InconsistentVersionWarning
    from sklearn.pipeline import Pipeline

    from src.store.serialization import dump_pipeline

    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        try:
            loaded = joblib.load(source)
        except Exception as error:  # whatever the file does when it is loaded
            print(f"unpickling failed: {type(error).__name__}: {error}", file=sys.stderr)
            return 2
    recorded = [w.message.original_sklearn_version for w in caught if isinstance(w.message, InconsistentVersionWarning)]
    if not isinstance(loaded, Pipeline):
        kind = f"{type(loaded).__module__}.{type(loaded).__qualname__}"
        print(f"the file holds a {kind}, not a scikit-learn Pipeline", file=sys.stderr)
        return 2
    try:
        data = dump_pipeline(loaded)
    except Exception as error:  # skops cannot write some objects (functions, lambdas)
        print(f"the Pipeline cannot be saved as skops: {type(error).__name__}: {error}", file=sys.stderr)
        return 2
    Path(target).write_bytes(data)
    print(json.dumps({"sklearn_version": recorded[0] if recorded else sklearn.__version__}))
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
