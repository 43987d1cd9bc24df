-- Run by mariadb-install-db --extra-file on a new data directory, before binary logging
-- exists, so none of it is a transaction of the server's own: every host starts with an empty
-- GTID state and the same accounts and demo table.
FLUSH PRIVILEGES;
-- The agent's account: all privileges.
CREATE USER 'mmm_agent'@'%' IDENTIFIED BY 'agent-pw';
GRANT ALL PRIVILEGES ON *.* TO 'mmm_agent'@'%' WITH GRANT OPTION;
-- Replication. The password has a quote and a backslash, as in the test lab.
CREATE USER 'mmm_repl'@'%' IDENTIFIED BY 're\'pl\\pw#1';
GRANT REPLICATION SLAVE ON *.* TO 'mmm_repl'@'%';
-- Applications: no READ_ONLY ADMIN, so read_only stops their writes.
CREATE USER 'mmm_app'@'%' IDENTIFIED BY 'app-pw';
GRANT SELECT, INSERT, UPDATE, DELETE, CREATE, DROP, INDEX, ALTER ON *.* TO 'mmm_app'@'%';
-- The monitor's checks: SLAVE MONITOR for SHOW SLAVE STATUS on MariaDB 10.5.9 and later.
CREATE USER 'mmm_monitor'@'%' IDENTIFIED BY 'monitor-pw';
GRANT REPLICATION CLIENT, SLAVE MONITOR, PROCESS ON *.* TO 'mmm_monitor'@'%';
-- What the demo and the smoke test write through the writer VIP.
CREATE DATABASE demo;
CREATE TABLE demo.w (v BIGINT PRIMARY KEY, host VARCHAR(64), t TIMESTAMP(3) DEFAULT CURRENT_TIMESTAMP(3));
