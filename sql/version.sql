--
-- The extension installs and reports its version.
--
-- version() is the library's version; it must be the version of the SQL
-- script that was installed, or library and catalog have drifted apart.
SELECT fraudstream.version() = extversion AS library_matches_catalog
  FROM pg_extension WHERE extname = 'fraudstream';
SELECT fraudstream.version() ~ '^\d+\.\d+\.\d+$' AS is_semver;
-- not relocatable, lives in its own schema
SELECT extrelocatable, extnamespace::regnamespace
  FROM pg_extension WHERE extname = 'fraudstream';
ALTER EXTENSION fraudstream SET SCHEMA public;
