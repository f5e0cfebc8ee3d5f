//! How an association names a function: by name, for a function deployed with Echo (the Lambda
//! `<stack>-<name>` on AWS), or by the ARN of a Lambda deployed some other way.

/// Function names: 1 to 64 characters of `a-z A-Z 0-9 _ -` (valid as Lambda function names).
pub fn valid_function_name(name: &str) -> bool {
    !name.is_empty()
        && name.len() <= 64
        && name
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || c == '_' || c == '-')
}

/// Whether `s` is a Lambda function ARN:
/// `arn:PARTITION:lambda:REGION:ACCOUNT:function:NAME`, optionally followed by `:QUALIFIER` (a
/// version or alias).
pub fn is_lambda_arn(s: &str) -> bool {
    lambda_arn_name(s).is_some()
}

/// The function name inside a Lambda function ARN, if `s` is one. The local edge invokes an ARN's
/// function by this name.
pub fn lambda_arn_name(s: &str) -> Option<&str> {
    let parts: Vec<&str> = s.split(':').collect();
    let (head, qualifier) = match parts.len() {
        7 => (&parts[..], None),
        8 => (&parts[..7], Some(parts[7])),
        _ => return None,
    };
    let [arn, partition, service, region, account, kind, name] = head else {
        return None;
    };
    let lower = |p: &str| {
        !p.is_empty()
            && p.chars()
                .all(|c| c.is_ascii_lowercase() || c.is_ascii_digit() || c == '-')
    };
    let ok = *arn == "arn"
        && partition.starts_with("aws")
        && lower(partition)
        && *service == "lambda"
        && lower(region)
        && account.len() == 12
        && account.chars().all(|c| c.is_ascii_digit())
        && *kind == "function"
        && valid_function_name(name)
        && qualifier.is_none_or(|q| {
            !q.is_empty()
                && q.len() <= 128
                && q.chars()
                    .all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_' || c == '$')
        });
    ok.then_some(*name)
}

/// Whether an association may name a function so: a function name or a Lambda function ARN.
pub fn valid_function_ref(s: &str) -> bool {
    valid_function_name(s) || is_lambda_arn(s)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lambda_arns_are_told_apart_from_names() {
        let arn = "arn:aws:lambda:eu-west-1:123456789012:function:geo-filter";
        assert_eq!(lambda_arn_name(arn), Some("geo-filter"));
        assert_eq!(lambda_arn_name(&format!("{arn}:live")), Some("geo-filter"));
        assert_eq!(
            lambda_arn_name(&format!("{arn}:$LATEST")),
            Some("geo-filter")
        );
        assert_eq!(
            lambda_arn_name("arn:aws-cn:lambda:cn-north-1:123456789012:function:f"),
            Some("f")
        );
        for bad in [
            "geo-filter",
            "arn:aws:lambda:eu-west-1:1234:function:f",
            "arn:aws:s3:eu-west-1:123456789012:function:f",
            "arn:aws:lambda:eu-west-1:123456789012:layer:f",
            "arn:aws:lambda:eu-west-1:123456789012:function:f:",
            "arn:aws:lambda:eu-west-1:123456789012:function:f:a:b",
            "arn:aws:lambda:EU:123456789012:function:f",
            "arn:azure:lambda:eu-west-1:123456789012:function:f",
        ] {
            assert_eq!(lambda_arn_name(bad), None, "{bad}");
        }
        assert!(valid_function_ref("geo-filter") && valid_function_ref(arn));
        assert!(!valid_function_ref("geo filter"));
    }
}
