//! Gratuitous ARP (to be written).
