# One image for every role of the EHC system: `ehc api` (default), `ehc worker`, `ehc db upgrade`.
# Configuration comes only from EHC_* environment variables (config/settings.py).

# The GOV.UK Frontend build (CSS, JS, fonts, images), and Swagger UI and ReDoc for the API's
# documentation pages (/docs, /redoc), at the versions in package-lock.json.
FROM node:20-slim AS assets
WORKDIR /assets
COPY package.json package-lock.json ./
RUN npm ci --no-audit --no-fund --loglevel=error

FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

RUN groupadd --gid 10001 ehc \
    && useradd --uid 10001 --gid ehc --create-home --shell /usr/sbin/nologin ehc
WORKDIR /app

# Dependencies first, read from pyproject.toml, so that a code change does not reinstall them.
COPY pyproject.toml ./
RUN python -c "import tomllib; print('\n'.join(tomllib.load(open('pyproject.toml', 'rb'))['project']['dependencies']))" \
        > /tmp/requirements.txt \
    && pip install -r /tmp/requirements.txt \
    && rm /tmp/requirements.txt

# The project. README.md is optional here (package metadata only), hence the pattern.
COPY alembic.ini README.m[d] ./
# Every package pyproject.toml lists (tests/test_api_docs.py checks the list).
COPY statutory ./statutory
COPY domain ./domain
COPY config ./config
COPY store ./store
COPY services ./services
COPY workflows ./workflows
COPY activities ./activities
COPY worker ./worker
COPY api ./api
COPY cli ./cli
COPY templates ./templates
COPY migrations ./migrations
COPY static ./static
COPY --from=assets /assets/node_modules/govuk-frontend/dist ./node_modules/govuk-frontend/dist
COPY --from=assets /assets/node_modules/swagger-ui-dist/swagger-ui-bundle.js \
     /assets/node_modules/swagger-ui-dist/swagger-ui.css \
     /assets/node_modules/swagger-ui-dist/favicon-32x32.png ./node_modules/swagger-ui-dist/
COPY --from=assets /assets/node_modules/redoc/bundles/redoc.standalone.js \
     ./node_modules/redoc/bundles/

# Installed in place (-e), not into site-packages: the code finds templates/, migrations/ and
# alembic.ini next to its packages (activities/rendering.py, cli/system.py), and a plain
# `pip install .` would leave those behind, breaking `ehc db upgrade` and every letter.
RUN pip install --no-deps -e . \
    && mkdir -p /app/data \
    && chown ehc:ehc /app/data

USER 10001:10001
# Inside a container the API must listen on all interfaces; state (if any) goes to /app/data.
ENV EHC_API_HOST=0.0.0.0 \
    EHC_DATA_DIR=/app/data
EXPOSE 8000
CMD ["ehc", "api"]
