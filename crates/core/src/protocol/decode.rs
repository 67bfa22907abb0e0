//! Decoding a client's text frame into a [`Request`], with the protocol's
//! rules for telling `bad_request` from `unknown_type` and for echoing `req`
//! whenever it could be read.

use super::{ErrorCode, ProtocolError, REQUEST_TYPES, Req, Request, integer_req};
use serde_json::Value;

/// A frame that could not be decoded: the error to send back, with the
/// frame's `req` when one could be read.
#[derive(Debug, Clone, PartialEq)]
pub struct DecodeError {
    pub req: Option<Req>,
    pub error: ProtocolError,
}

/// Decodes one text frame. Unknown fields are ignored; a missing `type`, a
/// missing required field or a field of the wrong type is `bad_request`; a
/// `type` nobody knows is `unknown_type`.
pub fn decode_request(text: &str) -> Result<(Option<Req>, Request), DecodeError> {
    let bad = |req: Option<Req>, message: String| DecodeError {
        req,
        error: ProtocolError::new(ErrorCode::BadRequest, message),
    };
    let value: Value = serde_json::from_str(text).map_err(|e| bad(None, format!("not valid JSON: {e}")))?;
    let Value::Object(object) = &value else {
        return Err(bad(None, "a frame must be one JSON object".into()));
    };
    let req = match object.get("req") {
        None | Some(Value::Null) => None,
        Some(v) => Some(integer_req(v).ok_or_else(|| bad(None, "req must be an integer".into()))?),
    };
    let kind = match object.get("type") {
        Some(Value::String(kind)) => kind.as_str(),
        Some(_) => return Err(bad(req, "type must be a string".into())),
        None => return Err(bad(req, "missing field `type`".into())),
    };
    if !REQUEST_TYPES.contains(&kind) {
        return Err(DecodeError {
            req,
            error: ProtocolError::new(ErrorCode::UnknownType, format!("unknown type `{kind}`")),
        });
    }
    let request: Request = serde_json::from_value(value).map_err(|e| bad(req.clone(), format!("{e}")))?;
    Ok((req, request))
}

#[cfg(test)]
mod tests {
    use super::*;

    fn code(text: &str) -> (Option<Req>, ErrorCode) {
        let e = decode_request(text).unwrap_err();
        (e.req, e.error.code)
    }

    #[test]
    fn decodes_every_request_type_and_ignores_unknown_fields() {
        let (req, r) = decode_request(r#"{"type":"logout","req":3,"extra":[1]}"#).unwrap();
        assert_eq!((req, r), (Some(3.into()), Request::Logout));
        let (_, r) = decode_request(r#"{"type":"invite","call_id":"c","callee_id":"b"}"#).unwrap();
        assert_eq!(
            r,
            Request::Invite {
                call_id: "c".into(),
                callee_id: "b".into(),
                content: String::new(),
                channel_id: String::new(),
                media_key: None,
                media_commit: None,
            }
        );
        for kind in REQUEST_TYPES {
            // Every known type is recognised (bad_request for missing fields at worst).
            let (_, c) = decode_request(&format!(r#"{{"type":"{kind}","req":1}}"#))
                .err()
                .map(|e| (e.req, e.error.code))
                .unwrap_or((None, ErrorCode::BadRequest));
            assert_ne!(c, ErrorCode::UnknownType, "{kind}");
        }
    }

    #[test]
    fn media_reveal_decodes_and_its_key_is_checked() {
        let key = "A".repeat(43);
        let text = format!(r#"{{"type":"media_reveal","req":9,"call_id":"c","media_key":"{key}"}}"#);
        let (req, r) = decode_request(&text).unwrap();
        assert_eq!(
            (req, &r),
            (Some(9.into()), &Request::MediaReveal { call_id: "c".into(), media_key: key })
        );
        assert!(r.validate().is_ok());
        assert_eq!(
            code(r#"{"type":"media_reveal","req":3,"call_id":"c"}"#),
            (Some(3.into()), ErrorCode::BadRequest)
        );
        let short = Request::MediaReveal { call_id: "c".into(), media_key: "A".repeat(42) };
        let e = short.validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("media_key"), "{e}");
        let both = Request::Invite {
            call_id: "c".into(),
            callee_id: "b".into(),
            content: String::new(),
            channel_id: String::new(),
            media_key: Some("A".repeat(43)),
            media_commit: Some("A".repeat(43)),
        };
        assert_eq!(both.validate().unwrap_err().code, ErrorCode::InvalidArgument);
    }

    #[test]
    fn classifies_bad_frames() {
        assert_eq!(code("nope"), (None, ErrorCode::BadRequest));
        assert_eq!(code("[1]"), (None, ErrorCode::BadRequest));
        assert_eq!(code(r#"{"req":"x","type":"logout"}"#), (None, ErrorCode::BadRequest));
        assert_eq!(code(r#"{"req":4}"#), (Some(4.into()), ErrorCode::BadRequest));
        assert_eq!(code(r#"{"req":5,"type":7}"#), (Some(5.into()), ErrorCode::BadRequest));
        assert_eq!(code(r#"{"req":6,"type":"dance"}"#), (Some(6.into()), ErrorCode::UnknownType));
        assert_eq!(
            code(r#"{"req":7,"type":"cancel","call_id":12}"#),
            (Some(7.into()), ErrorCode::BadRequest)
        );
        assert_eq!(code(r#"{"req":8,"type":"cancel"}"#), (Some(8.into()), ErrorCode::BadRequest));
    }

    #[test]
    fn validation_names_the_field() {
        let long = "x".repeat(65);
        let r = Request::Login { peer_id: long, token: String::new(), device: String::new() };
        let e = r.validate().unwrap_err();
        assert_eq!(e.code, ErrorCode::InvalidArgument);
        assert!(e.message.contains("peer_id"), "{}", e.message);
        let r = Request::Accept { call_id: "c".into(), response: "é".repeat(4097), media_key: None };
        assert!(r.validate().unwrap_err().message.contains("response"));
        assert!(!super::super::is_valid_id("has space"));
        assert!(super::super::is_valid_id("~!"));
    }
}
