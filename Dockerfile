FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_DISABLE_PIP_VERSION_CHECK=1 VIGIL_VAR_DIR=/app/var
WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt
COPY . .
# The one folder Vigil writes to (a volume in docker-compose.yml); everything else is read-only.
RUN useradd --create-home vigil && mkdir -p /app/var && chown vigil /app/var
USER vigil
EXPOSE 8000
CMD ["gunicorn", "crm.wsgi", "--bind", "0.0.0.0:8000", "--workers", "3"]
