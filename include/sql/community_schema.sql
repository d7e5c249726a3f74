-- Community Platform sample schema used by the demo and the tests (not needed in production).
CREATE TABLE IF NOT EXISTS users (
    id         bigserial PRIMARY KEY,
    handle     text        NOT NULL UNIQUE,
    email      text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE TABLE IF NOT EXISTS posts (
    id         bigserial PRIMARY KEY,
    user_id    bigint      NOT NULL REFERENCES users(id),
    title      text        NOT NULL,
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS posts_user_idx ON posts(user_id);
CREATE TABLE IF NOT EXISTS comments (
    id         bigserial PRIMARY KEY,
    post_id    bigint      NOT NULL REFERENCES posts(id),
    user_id    bigint      NOT NULL REFERENCES users(id),
    body       text        NOT NULL,
    created_at timestamptz NOT NULL DEFAULT now()
);
CREATE INDEX IF NOT EXISTS comments_post_idx ON comments(post_id);
