"""Client factories, one module per server kind.

Each builds the driver client for an Airflow connection (`lifeboat.connections.Endpoint`) in one
place -- timeouts, TLS, authentication, and errors that name the connection without its password --
for the backup engines, the failover engines, the monitor and anything else that talks to that kind
of server. Drivers are imported inside the functions: importing this package costs nothing.

    clients.postgres       psycopg 3 connections, libpq environment for the native tools
    clients.redis          redis-py clients, redis-cli arguments (password through REDISCLI_AUTH)
    clients.mongodb        pymongo sessions (ping, auth errors, FerretDB detection)
    clients.elasticsearch  elasticsearch-py clients and calls that translate API errors
    clients.aws            boto3 clients from an Airflow aws connection (S3, Route 53)
"""
