// Package segment turns message text into SMPP short messages and back.
//
// It chooses an encoding (GSM 7-bit when every character fits, else UCS-2),
// splits long text into concatenated parts with a user data header (8-bit
// or 16-bit reference) or SAR TLV values, counts segments for an API to
// report, decodes incoming short_message fields by data_coding and esm_class,
// and reassembles concatenated parts that arrive in any order.
//
// SMPP carries GSM 7-bit text unpacked, one septet per octet, and that is
// the form this package writes and reads; the SMSC packs it for the air.
// The package is pure: it does no I/O.
package segment
