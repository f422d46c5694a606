-- Script modules: the programs `script` workflow tasks run, stored and versioned. A save never changes a row: it
-- adds the next version, so a run pinned to (name, version) always runs the same bytes.

CREATE TABLE script_modules (
  name        text NOT NULL CHECK (name ~ '^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$'),
  version     integer NOT NULL CHECK (version >= 1),
  category    text NOT NULL DEFAULT 'general' CHECK (length(category) BETWEEN 1 AND 64),
  -- Where the script can run: a `windows` module is refused on a Linux worker instead of failing half-way.
  platform    text NOT NULL DEFAULT 'any' CHECK (platform IN ('linux', 'windows', 'any')),
  runtime     text NOT NULL CHECK (runtime IN ('pwsh', 'bash', 'node', 'python3')),
  description text NOT NULL DEFAULT '',
  body        text NOT NULL CHECK (length(body) > 0),
  created_at  timestamptz NOT NULL DEFAULT now(),
  created_by  text NOT NULL,
  PRIMARY KEY (name, version)
);

CREATE INDEX script_modules_category ON script_modules (category, name);
