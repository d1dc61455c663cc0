-- hyperdrive.get_role_secret(): the agent's lookup of a role's password
-- secret (like PgBouncer's auth_query), for roles that may log in.
SET password_encryption = 'scram-sha-256';
CREATE ROLE regress_hd_agent LOGIN;
CREATE ROLE regress_hd_user LOGIN PASSWORD 'secret1';
CREATE ROLE regress_hd_nologin NOLOGIN PASSWORD 'secret2';
CREATE ROLE regress_hd_super LOGIN SUPERUSER PASSWORD 'secret3';
CREATE ROLE regress_hd_expired LOGIN PASSWORD 'secret4' VALID UNTIL '2000-01-01';
CREATE ROLE regress_hd_nopass LOGIN;

-- only the roles granted EXECUTE may call it
GRANT USAGE ON SCHEMA hyperdrive TO regress_hd_agent;
SET ROLE regress_hd_agent;
SELECT hyperdrive.get_role_secret('regress_hd_user');
RESET ROLE;
GRANT EXECUTE ON FUNCTION hyperdrive.get_role_secret(name) TO regress_hd_agent;
SET ROLE regress_hd_agent;

-- a login role: its SCRAM secret (the salt varies, so show its shape)
SELECT regexp_replace(hyperdrive.get_role_secret('regress_hd_user'),
                      '^SCRAM-SHA-256\$4096:[^$]+\$[^:]+:.+$', 'SCRAM-SHA-256$4096:<salt>$<keys>')
       AS secret;
-- nothing for roles that cannot log in, superusers, expired roles, unknown
-- roles, or roles without a password
SELECT hyperdrive.get_role_secret('regress_hd_nologin') IS NULL AS nologin,
       hyperdrive.get_role_secret('regress_hd_super') IS NULL AS superuser,
       hyperdrive.get_role_secret('regress_hd_expired') IS NULL AS expired,
       hyperdrive.get_role_secret('regress_hd_nobody') IS NULL AS unknown,
       hyperdrive.get_role_secret('regress_hd_nopass') IS NULL AS no_password,
       hyperdrive.get_role_secret(NULL) IS NULL AS null_name;
-- it runs with the owner's rights but a fixed search_path
SELECT proname, prosecdef, proconfig FROM pg_proc WHERE proname = 'get_role_secret';
RESET ROLE;

REVOKE ALL ON SCHEMA hyperdrive FROM regress_hd_agent;
REVOKE ALL ON FUNCTION hyperdrive.get_role_secret(name) FROM regress_hd_agent;
DROP ROLE regress_hd_agent, regress_hd_user, regress_hd_nologin, regress_hd_super,
    regress_hd_expired, regress_hd_nopass;
