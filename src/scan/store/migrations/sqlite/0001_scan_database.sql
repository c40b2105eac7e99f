-- The scan database (SQLite). Keep in step with ../postgres/: only the id columns differ.
CREATE TABLE tenants (
    id INTEGER PRIMARY KEY,
    name TEXT NOT NULL UNIQUE,
    created_at BIGINT NOT NULL,
    retired_at BIGINT
);

CREATE TABLE scan_groups (
    id INTEGER PRIMARY KEY,
    tenant_id BIGINT NOT NULL REFERENCES tenants (id),
    name TEXT NOT NULL,
    spec TEXT NOT NULL,
    down_after BIGINT NOT NULL,
    created_at BIGINT NOT NULL,
    updated_at BIGINT NOT NULL,
    retired_at BIGINT,
    UNIQUE (tenant_id, name)
);

CREATE TABLE scans (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES scan_groups (id),
    content_hash TEXT NOT NULL,
    source TEXT NOT NULL,
    status TEXT NOT NULL,
    error TEXT,
    started_at BIGINT,
    finished_at BIGINT,
    ingested_at BIGINT NOT NULL,
    nmap_version TEXT,
    args TEXT,
    hosts_up BIGINT NOT NULL DEFAULT 0,
    baseline BIGINT NOT NULL DEFAULT 0,
    UNIQUE (group_id, content_hash)
);

CREATE TABLE hosts (
    id INTEGER PRIMARY KEY,
    group_id BIGINT NOT NULL REFERENCES scan_groups (id),
    address TEXT NOT NULL,
    status TEXT NOT NULL,
    misses BIGINT NOT NULL DEFAULT 0,
    first_scan_id BIGINT NOT NULL,
    seen_scan_id BIGINT,
    changed_scan_id BIGINT,
    last_seen_at BIGINT,
    observation TEXT,
    UNIQUE (group_id, address)
);

CREATE TABLE observations (
    scan_id BIGINT NOT NULL REFERENCES scans (id),
    address TEXT NOT NULL,
    host TEXT NOT NULL,
    PRIMARY KEY (scan_id, address)
);

CREATE TABLE events (
    id INTEGER PRIMARY KEY,
    scan_id BIGINT NOT NULL REFERENCES scans (id),
    group_id BIGINT NOT NULL REFERENCES scan_groups (id),
    address TEXT NOT NULL,
    kind TEXT NOT NULL,
    summary TEXT NOT NULL,
    detail TEXT NOT NULL,
    fingerprint TEXT NOT NULL,
    suppressed BIGINT NOT NULL DEFAULT 0,
    created_at BIGINT NOT NULL
);
CREATE INDEX events_by_group ON events (group_id, fingerprint);

CREATE TABLE outbox (
    id INTEGER PRIMARY KEY,
    event_id BIGINT NOT NULL REFERENCES events (id),
    route TEXT NOT NULL,
    attempts BIGINT NOT NULL DEFAULT 0,
    next_attempt_at BIGINT NOT NULL,
    lease_until BIGINT,
    delivered_at BIGINT,
    last_error TEXT,
    UNIQUE (event_id, route)
);
CREATE INDEX outbox_pending ON outbox (delivered_at, next_attempt_at);
