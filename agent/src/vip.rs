//! VIPs with rtnetlink (to be written).
