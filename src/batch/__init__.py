"""Batch scoring: a stored model over whole files, on this machine's cores or on Spark.

    src/batch/scoring.py   one chunk of texts: the serving text rules, then the served Predictor
    src/batch/tables.py    CSV, JSON Lines and Parquet read and written in chunks (pyarrow)
    src/batch/job.py       `ml-service predict`: read, score on every core, write beside, rename
    src/batch/progress.py  the progress bar (or plain lines) and the summary
    src/batch/spark.py     the same job on Spark, and predict_udf for a team's own Spark job

Every text is checked and scored by the code /predict uses (src/serving/text_rules.py,
src/serving/predictor.py), so a label here is the label /predict gives.
"""
