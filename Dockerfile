# The Daisi runtime (`daisi serve`) in a container.
#
#   docker build -t daisi-runtime .
#   docker run -v ./daisies:/daisies:ro -p 8421:8421 daisi-runtime
#
# Then open http://localhost:8421/. Options after the image name are added to
# `daisi serve`, e.g. `docker run ... -v ./tokens.txt:/tokens.txt:ro daisi-runtime
# --tokens /tokens.txt`. Executions, logs and blobs live in the /store volume. Packages
# that the Daisies need and the image lacks: build an image FROM this one that installs them.
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1

WORKDIR /opt/daisi-async
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[server]" \
    && useradd --create-home --uid 1000 daisi \
    && mkdir -p /daisies /store \
    && chown daisi /store

USER daisi
VOLUME ["/store"]
EXPOSE 8421
HEALTHCHECK --interval=30s --timeout=5s --start-period=30s \
    CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8421/healthz', timeout=4).status != 200)"]
ENTRYPOINT ["daisi", "serve", "/daisies", "--host", "0.0.0.0", "--port", "8421", "--store", "/store"]
