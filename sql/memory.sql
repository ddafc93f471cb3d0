--
-- Shared memory reserved at server start (needs shared_preload_libraries;
-- the error without it is tested in test/t/001_preload.pl).
--
SELECT area, bytes > 0 AS reserved FROM fraudstream.memory ORDER BY area;
-- the view and the function agree
SELECT (SELECT sum(bytes) FROM fraudstream.memory) =
       (SELECT sum(bytes) FROM fraudstream.memory_usage()) AS consistent;
-- the feature state is sized by its settings at server start
SELECT bytes >= pg_size_bytes(current_setting('fraudstream.state_memory'))
       AS holds_state_memory
  FROM fraudstream.memory WHERE area = 'features';
SET fraudstream.state_memory = '1GB';
