# syntax=docker/dockerfile:1
# pdfgen-pipeline: one image for every Dagster process of the deployment. The command picks the role
# (deploy/docker-entrypoint.sh):
#   docker run IMAGE                  code server (gRPC) on 0.0.0.0:4000 — the default
#   docker run IMAGE webserver        dagster-webserver on 0.0.0.0:3000, workspace /opt/dagster/app/workspace.yaml
#   docker run IMAGE daemon           dagster-daemon (sensors, schedule, run queue, run monitoring and retries)
#   docker run IMAGE init-s3          create the PDFGEN_*_URL buckets, seed empty referentiels with the samples
#   docker run IMAGE COMMAND ARGS...  anything else runs as is (Helm's `dagster code-server start ...`, the
#                                     `dagster api execute_run ...` of Kubernetes run pods)
# Build from the repository root: docker build -t pdfgen-pipeline:local .

# Same interpreter and Debian release as the development machines (Python 3.11, bookworm): the system
# packages below are the ones `make test` is run with. pyproject.toml: requires-python >= 3.11.
ARG PYTHON_IMAGE=python:3.11-slim-bookworm

# --------------------------------------------------------------------------- builder: the virtualenv
FROM ${PYTHON_IMAGE} AS builder
ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PYTHONDONTWRITEBYTECODE=1
RUN python -m venv /opt/venv
WORKDIR /src
COPY pyproject.toml README.md constraints.txt ./
COPY pdfgen_pipeline ./pdfgen_pipeline
# dagster-k8s: Kubernetes run pods start from this image and load the Helm chart's instance, whose run launcher
# is dagster_k8s.K8sRunLauncher. Same release line as the other Dagster integrations pinned in pyproject.toml.
ARG EXTRA_PACKAGES="dagster-k8s==0.29.27"
# Every dependency ships wheels for linux amd64/arm64 (lxml, pikepdf, pypdfium2, psycopg2-binary, grpcio):
# no compiler needed. Non-editable install: the package (templates and styles included) lands in the venv.
RUN --mount=type=cache,target=/root/.cache/pip \
    /opt/venv/bin/pip install --upgrade pip \
 && /opt/venv/bin/pip install -c constraints.txt . ${EXTRA_PACKAGES}

# --------------------------------------------------------------------------- runtime
FROM ${PYTHON_IMAGE} AS runtime
LABEL org.opencontainers.image.title="pdfgen-pipeline" \
      org.opencontainers.image.description="Shom nautical books: referentiel XML -> print PDF, on Dagster"

# Pango/HarfBuzz for WeasyPrint, Ghostscript, Poppler and the fonts for French text: the same script and
# package list as `make demo` / `make test` (runtime packages only, no --with-test), apt lists removed.
COPY scripts/install-system-deps.sh /tmp/install-system-deps.sh
RUN bash /tmp/install-system-deps.sh --clean && rm /tmp/install-system-deps.sh

RUN groupadd --system --gid 10001 dagster \
 && useradd --system --uid 10001 --gid dagster --create-home --home-dir /home/dagster \
        --shell /usr/sbin/nologin dagster

ENV VIRTUAL_ENV=/opt/venv \
    PATH=/opt/venv/bin:$PATH \
    DAGSTER_HOME=/opt/dagster/dagster_home \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1

COPY --from=builder /opt/venv /opt/venv
# The production instance (Postgres storage, queued runs, run retries and monitoring), read from DAGSTER_HOME.
# Under the Helm chart the run launcher mounts the chart's own instance ConfigMap there instead.
COPY dagster.yaml /opt/dagster/dagster_home/dagster.yaml
# Workspace of the webserver and the daemon: the code location served over gRPC by the `code-server` service.
COPY deploy/workspace-grpc.yaml /opt/dagster/app/workspace.yaml
COPY deploy/init_s3.py /opt/dagster/app/init_s3.py
COPY examples/referentiel /opt/dagster/app/examples/referentiel
COPY --chmod=0755 deploy/docker-entrypoint.sh /usr/local/bin/pdfgen-entrypoint
# DAGSTER_HOME must be writable by the non-root user (local compute logs in storage/, instance bookkeeping).
RUN mkdir -p /opt/dagster/dagster_home/storage \
 && chown -R dagster:dagster /opt/dagster/dagster_home

WORKDIR /opt/dagster/app
USER 10001:10001
EXPOSE 4000 3000
ENTRYPOINT ["pdfgen-entrypoint"]
CMD ["code-server"]
