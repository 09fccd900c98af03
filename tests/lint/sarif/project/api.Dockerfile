FROM python:3.12-slim
RUN pip install --no-cache-dir uvicorn fastapi
COPY app.py /app/app.py
RUN setcap cap_net_bind_service=+ep /usr/local/bin/python3.12
USER 10001
EXPOSE 8443
CMD ["uvicorn", "app:app", "--host", "0.0.0.0", "--port", "8443"]
