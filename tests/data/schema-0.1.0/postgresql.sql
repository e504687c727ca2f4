CREATE TABLE watches (
	id SERIAL NOT NULL, 
	team_id VARCHAR(64) NOT NULL, 
	task_id VARCHAR(64) NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	expires_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	closed_at TIMESTAMP WITH TIME ZONE, 
	snapshot JSONB, 
	CONSTRAINT pk_watches PRIMARY KEY (id), 
	CONSTRAINT ck_watches_status CHECK (status IN ('active', 'finished', 'expired', 'not_found', 'cancelled'))
);
CREATE UNIQUE INDEX uq_watches_active_task ON watches (team_id, task_id) WHERE status = 'active';
CREATE INDEX ix_watches_status ON watches (status);
CREATE TABLE feeds (
	id SERIAL NOT NULL, 
	team_id VARCHAR(64) NOT NULL, 
	channel_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(64) NOT NULL, 
	resources JSONB NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	CONSTRAINT pk_feeds PRIMARY KEY (id), 
	CONSTRAINT ck_feeds_status CHECK (status IN ('active', 'cancelled'))
);
CREATE UNIQUE INDEX uq_feeds_active_channel ON feeds (team_id, channel_id) WHERE status = 'active';
CREATE INDEX ix_feeds_status ON feeds (status);
CREATE TABLE connections (
	team_id VARCHAR(64) NOT NULL, 
	region VARCHAR(64) NOT NULL, 
	endpoint VARCHAR(500), 
	project_id VARCHAR(64) NOT NULL, 
	kind VARCHAR(16) NOT NULL, 
	access_key_enc TEXT, 
	access_key_hint VARCHAR(32), 
	secret_key_enc TEXT, 
	security_token_enc TEXT, 
	iam_username VARCHAR(128), 
	iam_password_enc TEXT, 
	iam_domain VARCHAR(128), 
	last_ok_at TIMESTAMP WITH TIME ZONE, 
	last_error VARCHAR(300), 
	last_error_at TIMESTAMP WITH TIME ZONE, 
	updated_by VARCHAR(64) NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_connections PRIMARY KEY (team_id), 
	CONSTRAINT ck_connections_kind CHECK (kind IN ('aksk', 'temporary_aksk', 'iam_password'))
);
CREATE TABLE guardrails (
	team_id VARCHAR(64) NOT NULL, 
	channels JSONB NOT NULL, 
	usergroup_id VARCHAR(64), 
	updated_by VARCHAR(64) NOT NULL, 
	updated_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_guardrails PRIMARY KEY (team_id)
);
CREATE TABLE audit_log (
	id SERIAL NOT NULL, 
	team_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(64) NOT NULL, 
	action VARCHAR(64) NOT NULL, 
	detail VARCHAR(500) NOT NULL, 
	at TIMESTAMP WITH TIME ZONE NOT NULL, 
	CONSTRAINT pk_audit_log PRIMARY KEY (id)
);
CREATE INDEX ix_audit_log_team_at ON audit_log (team_id, at);
CREATE TABLE subscribers (
	id SERIAL NOT NULL, 
	watch_id INTEGER NOT NULL, 
	team_id VARCHAR(64) NOT NULL, 
	channel_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(64) NOT NULL, 
	message_ts VARCHAR(32), 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	status VARCHAR(16) NOT NULL, 
	closed_reason VARCHAR(64), 
	CONSTRAINT pk_subscribers PRIMARY KEY (id), 
	CONSTRAINT ck_subscribers_status CHECK (status IN ('active', 'cancelled', 'closed')), 
	CONSTRAINT fk_subscribers_watch_id_watches FOREIGN KEY(watch_id) REFERENCES watches (id)
);
CREATE INDEX ix_subscribers_channel ON subscribers (team_id, channel_id, status);
CREATE UNIQUE INDEX uq_subscribers_active_channel ON subscribers (watch_id, channel_id) WHERE status = 'active';
CREATE INDEX ix_subscribers_watch_status ON subscribers (watch_id, status);
CREATE TABLE deliveries (
	id SERIAL NOT NULL, 
	key VARCHAR(32) NOT NULL, 
	team_id VARCHAR(64) NOT NULL, 
	channel_id VARCHAR(64) NOT NULL, 
	user_id VARCHAR(64), 
	kind VARCHAR(16) NOT NULL, 
	task_id VARCHAR(64) NOT NULL, 
	watch_id INTEGER, 
	subscriber_id INTEGER, 
	feed_id INTEGER, 
	thread_ts VARCHAR(32), 
	payload JSONB, 
	status VARCHAR(16) NOT NULL, 
	attempts INTEGER NOT NULL, 
	created_at TIMESTAMP WITH TIME ZONE NOT NULL, 
	attempt_at TIMESTAMP WITH TIME ZONE, 
	sent_at TIMESTAMP WITH TIME ZONE, 
	slack_ts VARCHAR(32), 
	error VARCHAR(500), 
	CONSTRAINT pk_deliveries PRIMARY KEY (id), 
	CONSTRAINT ck_deliveries_kind CHECK (kind IN ('finished', 'expired', 'not_found', 'feed')), 
	CONSTRAINT ck_deliveries_status CHECK (status IN ('pending', 'sending', 'sent', 'failed')), 
	CONSTRAINT uq_deliveries_key UNIQUE (key), 
	CONSTRAINT uq_deliveries_subscriber_kind UNIQUE (subscriber_id, kind), 
	CONSTRAINT uq_deliveries_feed_task UNIQUE (feed_id, task_id), 
	CONSTRAINT fk_deliveries_watch_id_watches FOREIGN KEY(watch_id) REFERENCES watches (id), 
	CONSTRAINT fk_deliveries_subscriber_id_subscribers FOREIGN KEY(subscriber_id) REFERENCES subscribers (id), 
	CONSTRAINT fk_deliveries_feed_id_feeds FOREIGN KEY(feed_id) REFERENCES feeds (id)
);
CREATE INDEX ix_deliveries_team ON deliveries (team_id);
CREATE INDEX ix_deliveries_status ON deliveries (status, created_at);
CREATE TABLE slack_bots (
	id SERIAL NOT NULL, 
	client_id VARCHAR(32) NOT NULL, 
	app_id VARCHAR(32) NOT NULL, 
	enterprise_id VARCHAR(32), 
	enterprise_name VARCHAR(200), 
	team_id VARCHAR(32), 
	team_name VARCHAR(200), 
	bot_token VARCHAR(200), 
	bot_id VARCHAR(32), 
	bot_user_id VARCHAR(32), 
	bot_scopes VARCHAR(1000), 
	bot_refresh_token VARCHAR(200), 
	bot_token_expires_at TIMESTAMP WITHOUT TIME ZONE, 
	is_enterprise_install BOOLEAN NOT NULL, 
	installed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX slack_bots_idx ON slack_bots (client_id, enterprise_id, team_id, installed_at);
CREATE TABLE slack_installations (
	id SERIAL NOT NULL, 
	client_id VARCHAR(32) NOT NULL, 
	app_id VARCHAR(32) NOT NULL, 
	enterprise_id VARCHAR(32), 
	enterprise_name VARCHAR(200), 
	enterprise_url VARCHAR(200), 
	team_id VARCHAR(32), 
	team_name VARCHAR(200), 
	bot_token VARCHAR(200), 
	bot_id VARCHAR(32), 
	bot_user_id VARCHAR(32), 
	bot_scopes VARCHAR(1000), 
	bot_refresh_token VARCHAR(200), 
	bot_token_expires_at TIMESTAMP WITHOUT TIME ZONE, 
	user_id VARCHAR(32) NOT NULL, 
	user_token VARCHAR(200), 
	user_scopes VARCHAR(1000), 
	user_refresh_token VARCHAR(200), 
	user_token_expires_at TIMESTAMP WITHOUT TIME ZONE, 
	incoming_webhook_url VARCHAR(200), 
	incoming_webhook_channel VARCHAR(200), 
	incoming_webhook_channel_id VARCHAR(200), 
	incoming_webhook_configuration_url VARCHAR(200), 
	is_enterprise_install BOOLEAN NOT NULL, 
	token_type VARCHAR(32), 
	installed_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);
CREATE INDEX slack_installations_idx ON slack_installations (client_id, enterprise_id, team_id, user_id, installed_at);
CREATE TABLE slack_oauth_states (
	id SERIAL NOT NULL, 
	state VARCHAR(200) NOT NULL, 
	expire_at TIMESTAMP WITHOUT TIME ZONE NOT NULL, 
	PRIMARY KEY (id)
);
