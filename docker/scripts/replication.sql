-- Run once, on a host's first start, with @MASTER_HOST@ replaced: replicate by GTID from the
-- host's initial master (the peer for a master, master1 for a slave).
STOP SLAVE;
CHANGE MASTER TO MASTER_HOST='@MASTER_HOST@', MASTER_PORT=3306, MASTER_USER='mmm_repl',
    MASTER_PASSWORD='re\'pl\\pw#1', MASTER_CONNECT_RETRY=1, MASTER_USE_GTID=slave_pos;
START SLAVE;
