-- The job database as mattectl made it at schema version 4, the last before Alembic (its
-- sqlite_master, made by that version's JobRepository.open), for the test that upgrades such a
-- file in place (tests/test_repository.py).
CREATE TABLE jobs (
	id INTEGER NOT NULL,
	folder VARCHAR(64) NOT NULL,
	input_path TEXT NOT NULL,
	rel_path TEXT NOT NULL,
	input_hash VARCHAR(64) NOT NULL,
	input_size BIGINT NOT NULL,
	input_mtime_ns BIGINT NOT NULL,
	status VARCHAR(16) NOT NULL,
	attempts INTEGER NOT NULL,
	model VARCHAR(64),
	device VARCHAR(32),
	precision VARCHAR(16),
	decision TEXT,
	decode_ms FLOAT,
	inference_ms FLOAT,
	encode_ms FLOAT,
	refine_ms FLOAT,
	confidence FLOAT,
	db_ms FLOAT,
	total_ms FLOAT,
	width INTEGER,
	height INTEGER,
	output_path TEXT,
	output_hash VARCHAR(64),
	error TEXT,
	claimed_by VARCHAR(128),
	created_at DATETIME NOT NULL,
	updated_at DATETIME NOT NULL,
	available_at DATETIME NOT NULL,
	started_at DATETIME,
	finished_at DATETIME,
	PRIMARY KEY (id),
	CONSTRAINT uq_jobs_folder_hash UNIQUE (folder, input_hash)
);
CREATE INDEX ix_jobs_claim ON jobs (status, available_at, id);
CREATE INDEX ix_jobs_folder_path ON jobs (folder, input_path);
CREATE INDEX ix_jobs_finished ON jobs (finished_at);
CREATE TABLE deliveries (
	id INTEGER NOT NULL,
	folder VARCHAR(64) NOT NULL,
	input_hash VARCHAR(64) NOT NULL,
	input_path TEXT NOT NULL,
	input_size BIGINT NOT NULL,
	input_mtime_ns BIGINT NOT NULL,
	output_path TEXT NOT NULL,
	output_hash VARCHAR(64),
	job_id INTEGER,
	delivered_at DATETIME NOT NULL,
	PRIMARY KEY (id),
	CONSTRAINT uq_deliveries_folder_hash UNIQUE (folder, input_hash)
);
CREATE INDEX ix_deliveries_delivered ON deliveries (delivered_at);
CREATE INDEX ix_deliveries_folder_path ON deliveries (folder, input_path);
CREATE TABLE daemons (
	instance VARCHAR(128) NOT NULL,
	host VARCHAR(255) NOT NULL,
	pid INTEGER NOT NULL,
	version VARCHAR(32) NOT NULL,
	started_at DATETIME NOT NULL,
	heartbeat_at DATETIME NOT NULL,
	stopped_at DATETIME,
	info TEXT NOT NULL,
	PRIMARY KEY (instance)
);
CREATE TABLE schema_version (
	version INTEGER NOT NULL,
	applied_at DATETIME NOT NULL,
	PRIMARY KEY (version)
);
