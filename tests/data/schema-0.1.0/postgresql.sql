--
-- PostgreSQL database dump
--


-- Dumped from database version 15.20 (Debian 15.20-0+deb12u1)
-- Dumped by pg_dump version 15.20 (Debian 15.20-0+deb12u1)

SET statement_timeout = 0;
SET lock_timeout = 0;
SET idle_in_transaction_session_timeout = 0;
SET client_encoding = 'UTF8';
SET standard_conforming_strings = on;
SELECT pg_catalog.set_config('search_path', '', false);
SET check_function_bodies = false;
SET xmloption = content;
SET client_min_messages = warning;
SET row_security = off;

SET default_tablespace = '';

SET default_table_access_method = heap;

--
-- Name: audit_log; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.audit_log (
    id integer NOT NULL,
    team_id character varying(64) NOT NULL,
    user_id character varying(64) NOT NULL,
    action character varying(64) NOT NULL,
    detail character varying(500) NOT NULL,
    at timestamp with time zone NOT NULL
);


--
-- Name: audit_log_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.audit_log_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: audit_log_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.audit_log_id_seq OWNED BY public.audit_log.id;


--
-- Name: connections; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.connections (
    team_id character varying(64) NOT NULL,
    region character varying(64) NOT NULL,
    endpoint character varying(500),
    project_id character varying(64) NOT NULL,
    kind character varying(16) NOT NULL,
    access_key_enc text,
    access_key_hint character varying(32),
    secret_key_enc text,
    security_token_enc text,
    iam_username character varying(128),
    iam_password_enc text,
    iam_domain character varying(128),
    last_ok_at timestamp with time zone,
    last_error character varying(300),
    last_error_at timestamp with time zone,
    updated_by character varying(64) NOT NULL,
    updated_at timestamp with time zone NOT NULL,
    CONSTRAINT ck_connections_kind CHECK (((kind)::text = ANY ((ARRAY['aksk'::character varying, 'temporary_aksk'::character varying, 'iam_password'::character varying])::text[])))
);


--
-- Name: deliveries; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.deliveries (
    id integer NOT NULL,
    key character varying(32) NOT NULL,
    team_id character varying(64) NOT NULL,
    channel_id character varying(64) NOT NULL,
    user_id character varying(64),
    kind character varying(16) NOT NULL,
    task_id character varying(64) NOT NULL,
    watch_id integer,
    subscriber_id integer,
    feed_id integer,
    thread_ts character varying(32),
    payload jsonb,
    status character varying(16) NOT NULL,
    attempts integer NOT NULL,
    created_at timestamp with time zone NOT NULL,
    attempt_at timestamp with time zone,
    sent_at timestamp with time zone,
    slack_ts character varying(32),
    error character varying(500),
    CONSTRAINT ck_deliveries_kind CHECK (((kind)::text = ANY ((ARRAY['finished'::character varying, 'expired'::character varying, 'not_found'::character varying, 'feed'::character varying])::text[]))),
    CONSTRAINT ck_deliveries_status CHECK (((status)::text = ANY ((ARRAY['pending'::character varying, 'sending'::character varying, 'sent'::character varying, 'failed'::character varying])::text[])))
);


--
-- Name: deliveries_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.deliveries_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: deliveries_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.deliveries_id_seq OWNED BY public.deliveries.id;


--
-- Name: feeds; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.feeds (
    id integer NOT NULL,
    team_id character varying(64) NOT NULL,
    channel_id character varying(64) NOT NULL,
    user_id character varying(64) NOT NULL,
    resources jsonb NOT NULL,
    created_at timestamp with time zone NOT NULL,
    status character varying(16) NOT NULL,
    CONSTRAINT ck_feeds_status CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'cancelled'::character varying])::text[])))
);


--
-- Name: feeds_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.feeds_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: feeds_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.feeds_id_seq OWNED BY public.feeds.id;


--
-- Name: guardrails; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.guardrails (
    team_id character varying(64) NOT NULL,
    channels jsonb NOT NULL,
    usergroup_id character varying(64),
    updated_by character varying(64) NOT NULL,
    updated_at timestamp with time zone NOT NULL
);


--
-- Name: slack_bots; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.slack_bots (
    id integer NOT NULL,
    client_id character varying(32) NOT NULL,
    app_id character varying(32) NOT NULL,
    enterprise_id character varying(32),
    enterprise_name character varying(200),
    team_id character varying(32),
    team_name character varying(200),
    bot_token character varying(200),
    bot_id character varying(32),
    bot_user_id character varying(32),
    bot_scopes character varying(1000),
    bot_refresh_token character varying(200),
    bot_token_expires_at timestamp without time zone,
    is_enterprise_install boolean NOT NULL,
    installed_at timestamp without time zone NOT NULL
);


--
-- Name: slack_bots_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.slack_bots_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: slack_bots_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.slack_bots_id_seq OWNED BY public.slack_bots.id;


--
-- Name: slack_installations; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.slack_installations (
    id integer NOT NULL,
    client_id character varying(32) NOT NULL,
    app_id character varying(32) NOT NULL,
    enterprise_id character varying(32),
    enterprise_name character varying(200),
    enterprise_url character varying(200),
    team_id character varying(32),
    team_name character varying(200),
    bot_token character varying(200),
    bot_id character varying(32),
    bot_user_id character varying(32),
    bot_scopes character varying(1000),
    bot_refresh_token character varying(200),
    bot_token_expires_at timestamp without time zone,
    user_id character varying(32) NOT NULL,
    user_token character varying(200),
    user_scopes character varying(1000),
    user_refresh_token character varying(200),
    user_token_expires_at timestamp without time zone,
    incoming_webhook_url character varying(200),
    incoming_webhook_channel character varying(200),
    incoming_webhook_channel_id character varying(200),
    incoming_webhook_configuration_url character varying(200),
    is_enterprise_install boolean NOT NULL,
    token_type character varying(32),
    installed_at timestamp without time zone NOT NULL
);


--
-- Name: slack_installations_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.slack_installations_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: slack_installations_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.slack_installations_id_seq OWNED BY public.slack_installations.id;


--
-- Name: slack_oauth_states; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.slack_oauth_states (
    id integer NOT NULL,
    state character varying(200) NOT NULL,
    expire_at timestamp without time zone NOT NULL
);


--
-- Name: slack_oauth_states_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.slack_oauth_states_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: slack_oauth_states_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.slack_oauth_states_id_seq OWNED BY public.slack_oauth_states.id;


--
-- Name: subscribers; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.subscribers (
    id integer NOT NULL,
    watch_id integer NOT NULL,
    team_id character varying(64) NOT NULL,
    channel_id character varying(64) NOT NULL,
    user_id character varying(64) NOT NULL,
    message_ts character varying(32),
    created_at timestamp with time zone NOT NULL,
    status character varying(16) NOT NULL,
    closed_reason character varying(64),
    CONSTRAINT ck_subscribers_status CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'cancelled'::character varying, 'closed'::character varying])::text[])))
);


--
-- Name: subscribers_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.subscribers_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: subscribers_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.subscribers_id_seq OWNED BY public.subscribers.id;


--
-- Name: watches; Type: TABLE; Schema: public; Owner: -
--

CREATE TABLE public.watches (
    id integer NOT NULL,
    team_id character varying(64) NOT NULL,
    task_id character varying(64) NOT NULL,
    status character varying(16) NOT NULL,
    created_at timestamp with time zone NOT NULL,
    expires_at timestamp with time zone NOT NULL,
    closed_at timestamp with time zone,
    snapshot jsonb,
    CONSTRAINT ck_watches_status CHECK (((status)::text = ANY ((ARRAY['active'::character varying, 'finished'::character varying, 'expired'::character varying, 'not_found'::character varying, 'cancelled'::character varying])::text[])))
);


--
-- Name: watches_id_seq; Type: SEQUENCE; Schema: public; Owner: -
--

CREATE SEQUENCE public.watches_id_seq
    AS integer
    START WITH 1
    INCREMENT BY 1
    NO MINVALUE
    NO MAXVALUE
    CACHE 1;


--
-- Name: watches_id_seq; Type: SEQUENCE OWNED BY; Schema: public; Owner: -
--

ALTER SEQUENCE public.watches_id_seq OWNED BY public.watches.id;


--
-- Name: audit_log id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log ALTER COLUMN id SET DEFAULT nextval('public.audit_log_id_seq'::regclass);


--
-- Name: deliveries id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries ALTER COLUMN id SET DEFAULT nextval('public.deliveries_id_seq'::regclass);


--
-- Name: feeds id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feeds ALTER COLUMN id SET DEFAULT nextval('public.feeds_id_seq'::regclass);


--
-- Name: slack_bots id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_bots ALTER COLUMN id SET DEFAULT nextval('public.slack_bots_id_seq'::regclass);


--
-- Name: slack_installations id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_installations ALTER COLUMN id SET DEFAULT nextval('public.slack_installations_id_seq'::regclass);


--
-- Name: slack_oauth_states id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_oauth_states ALTER COLUMN id SET DEFAULT nextval('public.slack_oauth_states_id_seq'::regclass);


--
-- Name: subscribers id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.subscribers ALTER COLUMN id SET DEFAULT nextval('public.subscribers_id_seq'::regclass);


--
-- Name: watches id; Type: DEFAULT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.watches ALTER COLUMN id SET DEFAULT nextval('public.watches_id_seq'::regclass);


--
-- Name: audit_log pk_audit_log; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.audit_log
    ADD CONSTRAINT pk_audit_log PRIMARY KEY (id);


--
-- Name: connections pk_connections; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.connections
    ADD CONSTRAINT pk_connections PRIMARY KEY (team_id);


--
-- Name: deliveries pk_deliveries; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT pk_deliveries PRIMARY KEY (id);


--
-- Name: feeds pk_feeds; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.feeds
    ADD CONSTRAINT pk_feeds PRIMARY KEY (id);


--
-- Name: guardrails pk_guardrails; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.guardrails
    ADD CONSTRAINT pk_guardrails PRIMARY KEY (team_id);


--
-- Name: subscribers pk_subscribers; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.subscribers
    ADD CONSTRAINT pk_subscribers PRIMARY KEY (id);


--
-- Name: watches pk_watches; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.watches
    ADD CONSTRAINT pk_watches PRIMARY KEY (id);


--
-- Name: slack_bots slack_bots_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_bots
    ADD CONSTRAINT slack_bots_pkey PRIMARY KEY (id);


--
-- Name: slack_installations slack_installations_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_installations
    ADD CONSTRAINT slack_installations_pkey PRIMARY KEY (id);


--
-- Name: slack_oauth_states slack_oauth_states_pkey; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.slack_oauth_states
    ADD CONSTRAINT slack_oauth_states_pkey PRIMARY KEY (id);


--
-- Name: deliveries uq_deliveries_feed_task; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT uq_deliveries_feed_task UNIQUE (feed_id, task_id);


--
-- Name: deliveries uq_deliveries_key; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT uq_deliveries_key UNIQUE (key);


--
-- Name: deliveries uq_deliveries_subscriber_kind; Type: CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT uq_deliveries_subscriber_kind UNIQUE (subscriber_id, kind);


--
-- Name: ix_audit_log_team_at; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_audit_log_team_at ON public.audit_log USING btree (team_id, at);


--
-- Name: ix_deliveries_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_deliveries_status ON public.deliveries USING btree (status, created_at);


--
-- Name: ix_deliveries_team; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_deliveries_team ON public.deliveries USING btree (team_id);


--
-- Name: ix_feeds_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_feeds_status ON public.feeds USING btree (status);


--
-- Name: ix_subscribers_channel; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_subscribers_channel ON public.subscribers USING btree (team_id, channel_id, status);


--
-- Name: ix_subscribers_watch_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_subscribers_watch_status ON public.subscribers USING btree (watch_id, status);


--
-- Name: ix_watches_status; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX ix_watches_status ON public.watches USING btree (status);


--
-- Name: slack_bots_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX slack_bots_idx ON public.slack_bots USING btree (client_id, enterprise_id, team_id, installed_at);


--
-- Name: slack_installations_idx; Type: INDEX; Schema: public; Owner: -
--

CREATE INDEX slack_installations_idx ON public.slack_installations USING btree (client_id, enterprise_id, team_id, user_id, installed_at);


--
-- Name: uq_feeds_active_channel; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_feeds_active_channel ON public.feeds USING btree (team_id, channel_id) WHERE ((status)::text = 'active'::text);


--
-- Name: uq_subscribers_active_channel; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_subscribers_active_channel ON public.subscribers USING btree (watch_id, channel_id) WHERE ((status)::text = 'active'::text);


--
-- Name: uq_watches_active_task; Type: INDEX; Schema: public; Owner: -
--

CREATE UNIQUE INDEX uq_watches_active_task ON public.watches USING btree (team_id, task_id) WHERE ((status)::text = 'active'::text);


--
-- Name: deliveries fk_deliveries_feed_id_feeds; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT fk_deliveries_feed_id_feeds FOREIGN KEY (feed_id) REFERENCES public.feeds(id);


--
-- Name: deliveries fk_deliveries_subscriber_id_subscribers; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT fk_deliveries_subscriber_id_subscribers FOREIGN KEY (subscriber_id) REFERENCES public.subscribers(id);


--
-- Name: deliveries fk_deliveries_watch_id_watches; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.deliveries
    ADD CONSTRAINT fk_deliveries_watch_id_watches FOREIGN KEY (watch_id) REFERENCES public.watches(id);


--
-- Name: subscribers fk_subscribers_watch_id_watches; Type: FK CONSTRAINT; Schema: public; Owner: -
--

ALTER TABLE ONLY public.subscribers
    ADD CONSTRAINT fk_subscribers_watch_id_watches FOREIGN KEY (watch_id) REFERENCES public.watches(id);


--
-- PostgreSQL database dump complete
--


