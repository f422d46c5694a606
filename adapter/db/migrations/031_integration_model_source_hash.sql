-- The SHA-256 (hex) of the file text a model was last loaded from (source 'file'; NULL for models uploaded through
-- the API). At start-up a file whose text hashes to a stored value is not parsed and validated again: that was
-- most of the start-up time spent on models.
ALTER TABLE integration_models ADD COLUMN source_sha256 text;
