//! The local MySQL server with mysql_async (to be written).
