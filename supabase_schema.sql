-- DayTrader: the journal's tables in Supabase (PostgreSQL). Run this once in the Supabase SQL
-- editor (or psql); it is safe to run again. It also loads on a plain PostgreSQL (15 or later,
-- as a superuser): the three roles Supabase has are created when missing, and every privilege
-- is granted explicitly instead of relying on Supabase's default grants, so the tables mean the
-- same on both.
--
-- What reaches these tables: the engine writes every record to its local SQLite journal first
-- (DATA_DIR/journal.sqlite); a replicator copies them here with upserts keyed by each table's
-- natural id (the UNIQUE / PRIMARY KEY column below), so a record sent twice is still one row.
--
-- Who may do what (Row Level Security is enabled on every table):
--   * service_role (SUPABASE_SERVICE_KEY): the replicator. It bypasses RLS and is the only key
--     that writes. Keep this key on the trading box only.
--   * anon (SUPABASE_KEY): READ ONLY, through the "read" policies below (a dashboard may show
--     history). It has no INSERT / UPDATE / DELETE policy, so RLS refuses its writes with
--     42501 and DayTrader reports that as a configuration error. To let anon read nothing,
--     drop the "read" policies:  DROP POLICY anon_read ON public.<table>;
--   * authenticated: nothing (no grants, no policies).

-- The API roles of a Supabase project; on Supabase they exist and this does nothing.
DO $$
BEGIN
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'anon') THEN
        CREATE ROLE anon NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'authenticated') THEN
        CREATE ROLE authenticated NOLOGIN NOINHERIT;
    END IF;
    IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'service_role') THEN
        CREATE ROLE service_role NOLOGIN NOINHERIT BYPASSRLS;
    END IF;
END
$$;
GRANT USAGE ON SCHEMA public TO anon, authenticated, service_role;

CREATE TABLE IF NOT EXISTS public.sessions (
    session_id  text PRIMARY KEY,
    mode        text NOT NULL,
    version     text NOT NULL,
    source      text NOT NULL,
    symbols     text NOT NULL,
    account     text NOT NULL,
    started_at  timestamptz NOT NULL,
    stopped_at  timestamptz,
    stop_reason text,
    resumed     boolean NOT NULL DEFAULT false
);

CREATE TABLE IF NOT EXISTS public.intents (
    client_order_id text PRIMARY KEY,          -- idempotent id: unique per account
    session_id      text NOT NULL,
    ts              timestamptz NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty             integer NOT NULL CHECK (qty > 0),
    order_type      text NOT NULL,
    limit_price     numeric,
    stop_price      numeric,
    stop_loss       numeric,
    take_profit     numeric,
    ref_price       numeric,
    reduce_only     boolean NOT NULL,
    reason          text NOT NULL,
    strategy        text NOT NULL,
    journaled_at    timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS intents_session_ts ON public.intents (session_id, ts);
CREATE INDEX IF NOT EXISTS intents_symbol_ts ON public.intents (symbol, ts DESC);

CREATE TABLE IF NOT EXISTS public.order_events (
    event_id         text PRIMARY KEY,
    session_id       text NOT NULL,
    ts               timestamptz NOT NULL,
    event            text NOT NULL,            -- new, fill, canceled, rejected, submit_<outcome>
    order_id         text,
    client_order_id  text NOT NULL,
    symbol           text NOT NULL,
    side             text,
    qty              integer,
    order_type       text,
    status           text,
    role             text,
    limit_price      numeric,
    stop_price       numeric,
    filled_qty       integer,
    filled_avg_price numeric,
    parent_id        text,
    detail           text NOT NULL DEFAULT ''
);
CREATE INDEX IF NOT EXISTS order_events_order ON public.order_events (order_id);
CREATE INDEX IF NOT EXISTS order_events_client ON public.order_events (client_order_id);
CREATE INDEX IF NOT EXISTS order_events_session_ts ON public.order_events (session_id, ts);

CREATE TABLE IF NOT EXISTS public.fills (
    fill_id         text PRIMARY KEY,          -- account:broker fill id
    session_id      text NOT NULL,
    broker_fill_id  text NOT NULL,
    order_id        text NOT NULL,
    client_order_id text NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL CHECK (side IN ('buy', 'sell')),
    qty             integer NOT NULL CHECK (qty > 0),
    price           numeric NOT NULL,
    commission      numeric NOT NULL,
    ts              timestamptz NOT NULL,
    role            text NOT NULL
);
CREATE INDEX IF NOT EXISTS fills_ts ON public.fills (ts DESC);
CREATE INDEX IF NOT EXISTS fills_symbol_ts ON public.fills (symbol, ts DESC);
CREATE INDEX IF NOT EXISTS fills_order ON public.fills (order_id);

CREATE TABLE IF NOT EXISTS public.position_snapshots (
    snapshot_id     text PRIMARY KEY,
    session_id      text NOT NULL,
    ts              timestamptz NOT NULL,
    symbol          text NOT NULL,
    qty             integer NOT NULL,
    avg_entry_price numeric,
    last_price      numeric,
    stop_loss       numeric,
    take_profit     numeric
);
CREATE INDEX IF NOT EXISTS position_snapshots_symbol_ts ON public.position_snapshots (symbol, ts DESC);

CREATE TABLE IF NOT EXISTS public.risk_decisions (
    decision_id     text PRIMARY KEY,
    session_id      text NOT NULL,
    ts              timestamptz NOT NULL,
    client_order_id text NOT NULL,
    symbol          text NOT NULL,
    side            text NOT NULL,
    qty             integer NOT NULL,
    approved        boolean NOT NULL,
    failed_check    text,                      -- the first check that failed, for rejections
    reason          text NOT NULL,
    checks          text NOT NULL              -- every check as JSON: name, passed, value, limit
);
CREATE INDEX IF NOT EXISTS risk_decisions_ts ON public.risk_decisions (ts DESC);
CREATE INDEX IF NOT EXISTS risk_decisions_failed ON public.risk_decisions (failed_check, ts DESC)
    WHERE NOT approved;

CREATE TABLE IF NOT EXISTS public.breaker_events (
    event_id   text PRIMARY KEY,
    session_id text NOT NULL,
    ts         timestamptz NOT NULL,
    action     text NOT NULL,                  -- trip, reset, day_reset
    source     text NOT NULL,
    loss_pct   double precision,
    equity     numeric,
    baseline   numeric,
    message    text NOT NULL
);
CREATE INDEX IF NOT EXISTS breaker_events_ts ON public.breaker_events (ts DESC);

CREATE TABLE IF NOT EXISTS public.control_actions (
    action_id  text PRIMARY KEY,
    session_id text NOT NULL,
    ts         timestamptz NOT NULL,
    source     text NOT NULL,                  -- who: console, api, ctl, engine
    action     text NOT NULL,                  -- what: enable, disable, emergency_stop, ...
    detail     text NOT NULL
);
CREATE INDEX IF NOT EXISTS control_actions_ts ON public.control_actions (ts DESC);

CREATE TABLE IF NOT EXISTS public.equity_points (
    point_id   text PRIMARY KEY,               -- session:kind:ts
    session_id text NOT NULL,
    ts         timestamptz NOT NULL,
    kind       text NOT NULL,                  -- minute, sod (start of day), eod (end of day)
    equity     numeric NOT NULL,
    cash       numeric NOT NULL,
    state      text NOT NULL
);
CREATE INDEX IF NOT EXISTS equity_points_session_ts ON public.equity_points (session_id, ts);
CREATE INDEX IF NOT EXISTS equity_points_eod ON public.equity_points (ts DESC) WHERE kind = 'eod';

CREATE TABLE IF NOT EXISTS public.model_calls (
    call_id           text PRIMARY KEY,
    session_id        text NOT NULL,
    ts                timestamptz NOT NULL,
    kind              text NOT NULL,           -- entry (second opinion), debrief, ask
    subject           text NOT NULL,           -- the entry's client order id, the date, the question
    symbol            text NOT NULL,
    model             text NOT NULL,
    mode              text NOT NULL,           -- ADVISOR_MODE: off, advise, veto
    prompt            text NOT NULL,           -- the messages sent, as JSON
    answer            text,                    -- the model's raw answer
    outcome           text NOT NULL,           -- agree, caution, veto, skipped, answered, dropped
    verdict           text,
    confidence        double precision,
    reasons           text NOT NULL,           -- JSON list
    error             text NOT NULL,           -- why the answer was not used
    latency_ms        double precision,
    prompt_tokens     integer,
    completion_tokens integer,
    journaled_at      timestamptz NOT NULL
);
CREATE INDEX IF NOT EXISTS model_calls_ts ON public.model_calls (ts DESC);
CREATE INDEX IF NOT EXISTS model_calls_subject ON public.model_calls (subject);

-- Row Level Security on every table; anon may read, nobody but service_role may write.
-- Privileges are stated, not inherited from Supabase's defaults (which grant anon and
-- authenticated everything on new tables): service_role reads and upserts (INSERT ... ON
-- CONFLICT DO UPDATE needs SELECT, INSERT and UPDATE), anon only reads, authenticated nothing.
DO $$
DECLARE t text;
BEGIN
    FOREACH t IN ARRAY ARRAY['sessions', 'intents', 'order_events', 'fills', 'position_snapshots',
                             'risk_decisions', 'breaker_events', 'control_actions', 'equity_points',
                             'model_calls']
    LOOP
        EXECUTE format('REVOKE ALL ON public.%I FROM anon, authenticated, service_role', t);
        EXECUTE format('GRANT SELECT, INSERT, UPDATE ON public.%I TO service_role', t);
        EXECUTE format('GRANT SELECT ON public.%I TO anon', t);
        EXECUTE format('ALTER TABLE public.%I ENABLE ROW LEVEL SECURITY', t);
        EXECUTE format('DROP POLICY IF EXISTS anon_read ON public.%I', t);
        EXECUTE format('CREATE POLICY anon_read ON public.%I FOR SELECT TO anon USING (true)', t);
    END LOOP;
END
$$;
