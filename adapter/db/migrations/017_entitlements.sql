-- Who may order an asset type, and how long a default assignment lasts.
--
-- entitlements: {"groups": [...], "departments": [...], "users": [...]}. A person may order the type when any one
-- list names them (a group they are in, directly or nested; their directory department; their email); all three
-- empty means everyone may. Kept as one jsonb document, like data_classification, because the lists are read whole
-- at placement and in the catalogue and never queried by element: an index per list would buy nothing. The
-- application writes the lists normalised (emails lower-cased, duplicates dropped); the CHECK only guards the
-- shape, so a hand-written row cannot make placement read something it does not expect.
--
-- default_duration_days: the length of an assignment when the requester does not choose one; the catalogue's
-- projected cost is monthly_cost × default_duration_days / 30. Null: no default length, no projection.
ALTER TABLE asset_types
  ADD COLUMN entitlements jsonb NOT NULL DEFAULT '{"groups": [], "departments": [], "users": []}'::jsonb
    CONSTRAINT asset_types_entitlements_shape CHECK (
      jsonb_typeof(entitlements) = 'object'
      AND jsonb_typeof(entitlements -> 'groups') = 'array'
      AND jsonb_typeof(entitlements -> 'departments') = 'array'
      AND jsonb_typeof(entitlements -> 'users') = 'array'
    ),
  ADD COLUMN default_duration_days integer
    CONSTRAINT asset_types_default_duration_days_range CHECK (default_duration_days BETWEEN 1 AND 3650);
