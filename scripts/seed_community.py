"""Seed the Community Platform sample database and, optionally, keep writing to it.

    python scripts/seed_community.py --users 2000 --posts 10000 --comments 30000
    python scripts/seed_community.py --traffic 120      # ongoing writes for 120 s (0 = until killed)

Connects through AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2 (written by `make stack-up` into .stack/env).
"""

from __future__ import annotations

import argparse
import os
import random
import time
from pathlib import Path

import psycopg

SCHEMA = Path(__file__).resolve().parents[1] / "include" / "sql" / "community_schema.sql"


def connect():
    uri = os.environ.get("AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2")
    if not uri:
        raise SystemExit("AIRFLOW_CONN_LIFEBOAT_PG_US_WEST_2 is not set: run `make stack-up` and `source .stack/env`")
    return psycopg.connect(uri.replace("postgresql://", "postgresql://", 1), autocommit=True)


def seed(conn, users: int, posts: int, comments: int) -> None:
    conn.execute(SCHEMA.read_text())
    have = conn.execute("SELECT count(*) FROM users").fetchone()[0]
    if have >= users:
        print(f"seed: already seeded ({have} users)")
        return
    conn.execute(
        "INSERT INTO users (handle, email) SELECT 'user' || g, 'user' || g || '@community.example.com' "
        "FROM generate_series(%s::bigint, %s::bigint) g", (have + 1, users))
    conn.execute(
        "INSERT INTO posts (user_id, title, body) "
        "SELECT 1 + (g * 7919) %% %s, 'post ' || g, repeat('lorem ipsum ', 20) "
        "FROM generate_series(1, %s::bigint) g", (users, posts))
    conn.execute(
        "INSERT INTO comments (post_id, user_id, body) "
        "SELECT 1 + (g * 104729) %% %s, 1 + (g * 31) %% %s, 'comment ' || g "
        "FROM generate_series(1, %s::bigint) g", (posts, users, comments))
    print(f"seed: {users} users, {posts} posts, {comments} comments")


def seed_mongo(users: int, posts: int) -> None:
    """The platform's document side (activity feed) in MongoDB, when the stack runs one."""
    uri = os.environ.get("AIRFLOW_CONN_LIFEBOAT_MONGO_US_WEST_2")
    if not uri:
        return
    import pymongo

    client = pymongo.MongoClient(uri.replace("mongo://", "mongodb://", 1), serverSelectionTimeoutMS=10000)
    db = client["community"]
    have = db["feed"].estimated_document_count()
    if have >= posts // 10:
        print(f"seed: mongodb already seeded ({have} feed items)")
        return
    # a smaller earlier seed may be there: upsert the profiles, add only the feed items it lacks
    db["profiles"].bulk_write([pymongo.ReplaceOne({"_id": i}, {"handle": f"user{i}",
                                                               "badges": ["early"] if i % 7 == 0 else []}, upsert=True)
                               for i in range(1, users // 10 + 1)])
    there = set(db["feed"].distinct("post_id"))
    missing = [{"user": 1 + (i * 31) % (users // 10), "kind": "post", "post_id": i, "text": f"post {i}",
                "likes": i % 13} for i in range(posts // 10) if i not in there]
    if missing:
        db["feed"].insert_many(missing)
    db["feed"].create_index("user")
    print(f"seed: mongodb {users // 10} profiles, {posts // 10} feed items")


def traffic(conn, seconds: float, rate: float) -> None:
    end = time.monotonic() + seconds if seconds else None
    n = 0
    max_user = conn.execute("SELECT max(id) FROM users").fetchone()[0]
    while end is None or time.monotonic() < end:
        uid = random.randint(1, max_user)
        pid = conn.execute("INSERT INTO posts (user_id, title, body) VALUES (%s, %s, %s) RETURNING id",
                           (uid, f"live post {n}", "written during the demo")).fetchone()[0]
        conn.execute("INSERT INTO comments (post_id, user_id, body) VALUES (%s, %s, %s)", (pid, uid, "first!"))
        n += 1
        time.sleep(1.0 / rate)


def main() -> None:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--users", type=int, default=2000)
    p.add_argument("--posts", type=int, default=10000)
    p.add_argument("--comments", type=int, default=30000)
    p.add_argument("--traffic", type=float, default=None, help="keep writing for N seconds (0 = forever)")
    p.add_argument("--rate", type=float, default=5.0, help="writes per second with --traffic")
    args = p.parse_args()
    with connect() as conn:
        if args.traffic is None:
            seed(conn, args.users, args.posts, args.comments)
            seed_mongo(args.users, args.posts)
        else:
            traffic(conn, args.traffic, args.rate)


if __name__ == "__main__":
    main()
