
using namespace System.Management.Automation
using namespace System.Management.Automation.Language

Register-ArgumentCompleter -Native -CommandName 'session-proxy' -ScriptBlock {
    param($wordToComplete, $commandAst, $cursorPosition)

    $commandElements = $commandAst.CommandElements
    $command = @(
        'session-proxy'
        for ($i = 1; $i -lt $commandElements.Count; $i++) {
            $element = $commandElements[$i]
            if ($element -isnot [StringConstantExpressionAst] -or
                $element.StringConstantType -ne [StringConstantType]::BareWord -or
                $element.Value.StartsWith('-') -or
                $element.Value -eq $wordToComplete) {
                break
        }
        $element.Value
    }) -join ';'

    $completions = @(switch ($command) {
        'session-proxy' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('stdio', 'stdio', [CompletionResultType]::ParameterValue, 'Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand)')
            [CompletionResult]::new('shell', 'shell', [CompletionResultType]::ParameterValue, 'Open an interactive shell on an instance (like `aws ssm start-session`)')
            [CompletionResult]::new('forward', 'forward', [CompletionResultType]::ParameterValue, 'Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions)')
            [CompletionResult]::new('sim', 'sim', [CompletionResultType]::ParameterValue, 'Run a local simulator of the AWS side of Session Manager (no AWS account needed)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command on an instance: its output on stdout, its exit status as ours')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the running master''s upstreams, forwards, connections and traffic (exits 68 while an upstream is down)')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Bring an upstream of the running master up and wait for a ready connection, or start a forward again')
            [CompletionResult]::new('disconnect', 'disconnect', [CompletionResultType]::ParameterValue, 'Close an upstream''s SSM sessions (its destinations get "host unreachable"), or stop a forward (its listener and sessions)')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Make the running master re-read its config and apply what changed')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop the running master (drain, terminate every SSM session)')
            [CompletionResult]::new('route', 'route', [CompletionResultType]::ParameterValue, 'Show which route, upstream or default a destination takes (asks the running master)')
            [CompletionResult]::new('ssh-config', 'ssh-config', [CompletionResultType]::ParameterValue, 'Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go through Session Manager')
            [CompletionResult]::new('instances', 'instances', [CompletionResultType]::ParameterValue, 'List the managed instances Session Manager reaches, with the config aliases and upstreams that point at each')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check config, credentials, region, endpoint, permissions, a target, the master and ssh, naming the fix for each failure')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write shell completions and man pages')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the completion script for a shell (`source <(session-proxy completions bash)`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'session-proxy;stdio' {
            [CompletionResult]::new('-p', '-p', [CompletionResultType]::ParameterName, 'Port on the instance (portNumber of the session document). Default: the alias''s port, else 22')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Port on the instance (portNumber of the session document). Default: the alias''s port, else 22')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile (default: the alias''s, else AWS_PROFILE or the default profile)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region (default: AWS_REGION or the profile''s region)')
            [CompletionResult]::new('--document', '--document', [CompletionResultType]::ParameterName, 'Session document')
            [CompletionResult]::new('--chunk', '--chunk', [CompletionResultType]::ParameterName, 'Bytes per outgoing data-channel message (a tuning knob for benchmarks, hidden from `--help`: the agent''s own limit is what matters to users)')
            [CompletionResult]::new('--send-key', '--send-key', [CompletionResultType]::ParameterName, 'Push a public key with EC2 Instance Connect (SendSSHPublicKey) before connecting, so the instance accepts it for 60 s. Default key: the first of ~/.ssh/id_ed25519.pub, id_ecdsa.pub, id_rsa.pub, else the first ssh-agent key. EC2 instances (i-…) only; always opens its own session (never through a master)')
            [CompletionResult]::new('--os-user', '--os-user', [CompletionResultType]::ParameterName, 'The OS user the pushed key is for: pass ssh''s login (`--os-user %r` in a ProxyCommand). Default: ec2-user')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;shell' {
            [CompletionResult]::new('--document', '--document', [CompletionResultType]::ParameterName, 'Session document (Standard_Stream or InteractiveCommands), e.g. AWS-StartInteractiveCommand with --parameter command=…')
            [CompletionResult]::new('--parameter', '--parameter', [CompletionResultType]::ParameterName, 'A parameter of the document; repeat a key to give it a list of values')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile (default: the alias''s, else AWS_PROFILE or the default profile)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region (default: AWS_REGION or the profile''s region)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;forward' {
            [CompletionResult]::new('--via', '--via', [CompletionResultType]::ParameterName, 'The instance that reaches HOST: an id (i-…, mi-…), Name tag, `hosts:` alias, or an upstream of the config (through the running master''s SSH pool when one runs)')
            [CompletionResult]::new('--sessions', '--sessions', [CompletionResultType]::ParameterName, 'SSM sessions per spec; connections spread over them (one carries about 1 MB/s)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile (default: the alias''s or upstream''s, else AWS_PROFILE or the default)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region (default: AWS_REGION or the profile''s region)')
            [CompletionResult]::new('--ready-file', '--ready-file', [CompletionResultType]::ParameterName, 'Once listening, write the bound addresses here, one per line (for scripts and tests)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--allow-remote', '--allow-remote', [CompletionResultType]::ParameterName, 'Allow a BIND address that is not loopback (other machines can then use the forward)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;sim' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'Address to listen on (loopback only)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'An instance: `i-0123456789abcdef0=127.0.0.1:2222[,name=web,ip=10.0.0.5,computer=host,offline,agent=3.3.987.0,host=db.internal@127.0.0.1]`. `host=NAME@LOOPBACK-IP` (repeatable) names a host the instance reaches, for AWS-StartPortForwardingSessionToRemoteHost')
            [CompletionResult]::new('--instances', '--instances', [CompletionResultType]::ParameterName, 'YAML file listing instances')
            [CompletionResult]::new('--pace-ms', '--pace-ms', [CompletionResultType]::ParameterName, 'Milliseconds the agent sleeps per chunk read (1 imitates the real agent''s ~1 MB/s)')
            [CompletionResult]::new('--chunk', '--chunk', [CompletionResultType]::ParameterName, 'Bytes per agent output message')
            [CompletionResult]::new('--agent-version', '--agent-version', [CompletionResultType]::ParameterName, 'AgentVersion to report in the handshake (default: each instance''s)')
            [CompletionResult]::new('--write-rate', '--write-rate', [CompletionResultType]::ParameterName, 'Bytes per second the agent writes to its target at most; it acknowledges client data only once written, so e.g. 7000000 gives the real agent''s late acks during uploads')
            [CompletionResult]::new('--ack-race-every', '--ack-race-every', [CompletionResultType]::ParameterName, 'Lose the first acknowledge of every Nth agent message (the real agent''s send/ack race)')
            [CompletionResult]::new('--kms-key-id', '--kms-key-id', [CompletionResultType]::ParameterName, 'KMS key ARN: shell sessions (never port sessions) are then encrypted with it, as with a KMS key in the Session Manager preferences; the simulator answers the KMS calls')
            [CompletionResult]::new('--shell-command', '--shell-command', [CompletionResultType]::ParameterName, 'What a shell session (SSM-SessionManagerRunShell) runs in its pty on every instance; a command with arguments runs through `sh -c`')
            [CompletionResult]::new('--seed', '--seed', [CompletionResultType]::ParameterName, 'Seed of the fault plan (printed so a failure can be replayed)')
            [CompletionResult]::new('--drop', '--drop', [CompletionResultType]::ParameterName, 'Drop rate (0..1) of frames in both directions')
            [CompletionResult]::new('--duplicate', '--duplicate', [CompletionResultType]::ParameterName, 'Duplicate rate (0..1) of frames in both directions')
            [CompletionResult]::new('--reorder', '--reorder', [CompletionResultType]::ParameterName, 'Reorder rate (0..1) of frames in both directions')
            [CompletionResult]::new('--delay-ms', '--delay-ms', [CompletionResultType]::ParameterName, 'Extra delay in milliseconds for every frame')
            [CompletionResult]::new('--kill-after-bytes', '--kill-after-bytes', [CompletionResultType]::ParameterName, 'Close the client''s WebSocket (code 1000) after this many bytes, repeatedly')
            [CompletionResult]::new('--kill-every-secs', '--kill-every-secs', [CompletionResultType]::ParameterName, 'Close the client''s WebSocket (code 1000) every this many seconds')
            [CompletionResult]::new('--credential-lifetime', '--credential-lifetime', [CompletionResultType]::ParameterName, 'Mint credentials that expire after SECS on `GET /_sim/credentials` (credential_process JSON, e.g. `credential_process = curl -s http://ADDR/_sim/credentials`) and accept only those: an unknown key is UnrecognizedClientException, an expired one ExpiredTokenException. Tests refreshes of expiring credentials')
            [CompletionResult]::new('--deny', '--deny', [CompletionResultType]::ParameterName, 'Answer this IAM action with AccessDenied, as an account whose policy lacks it would (repeatable): `ssm:StartSession`, `ssm:DescribeInstanceInformation`, `kms:Decrypt`, `tag:GetResources`')
            [CompletionResult]::new('--idle-timeout-secs', '--idle-timeout-secs', [CompletionResultType]::ParameterName, 'Seconds a session may wait for its client to resume before it is closed')
            [CompletionResult]::new('--stats-file', '--stats-file', [CompletionResultType]::ParameterName, 'Write per-session stats (JSON) here on exit')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Directory for the demo instance''s keys (default: $XDG_STATE_HOME/session-proxy/demo)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--legacy-agent', '--legacy-agent', [CompletionResultType]::ParameterName, 'Imitate agents that skip the handshake')
            [CompletionResult]::new('--require-signed-upgrade', '--require-signed-upgrade', [CompletionResultType]::ParameterName, 'Refuse (HTTP 403) data-channel upgrades that are not SigV4-signed with the simulator''s credentials (the ones its environment lines print). Without it both forms are accepted (and counted in the stats)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;serve' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'SOCKS5 listen address or Unix socket path (repeatable; replaces the config''s listeners)')
            [CompletionResult]::new('--default', '--default', [CompletionResultType]::ParameterName, 'Default action: direct, reject or an upstream name')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile for every upstream')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region for every upstream')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Directory for known_hosts and logs (default: XDG state dir)')
            [CompletionResult]::new('--target', '--target', [CompletionResultType]::ParameterName, 'Ad-hoc mode: bastion instance id or name (repeatable); builds a one-upstream config')
            [CompletionResult]::new('--user', '--user', [CompletionResultType]::ParameterName, 'Ad-hoc mode: SSH user on the bastion')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Ad-hoc mode: SSH private key (repeatable)')
            [CompletionResult]::new('--identity', '--identity', [CompletionResultType]::ParameterName, 'Ad-hoc mode: SSH private key (repeatable)')
            [CompletionResult]::new('--port', '--port', [CompletionResultType]::ParameterName, 'Ad-hoc mode: sshd port on the bastion')
            [CompletionResult]::new('--pool-size', '--pool-size', [CompletionResultType]::ParameterName, 'Ad-hoc mode: SSH connections (SSM sessions) to keep open')
            [CompletionResult]::new('--host-key-policy', '--host-key-policy', [CompletionResultType]::ParameterName, 'Ad-hoc mode: host key policy')
            [CompletionResult]::new('--ready-file', '--ready-file', [CompletionResultType]::ParameterName, 'Once ready, write the bound listener addresses here, one per line (for scripts and tests that listen on port 0)')
            [CompletionResult]::new('--drain-timeout', '--drain-timeout', [CompletionResultType]::ParameterName, 'Seconds `stop`/SIGTERM/SIGINT let streams in flight finish before closing them (config `drain_timeout_secs`, default 10); a second stop closes them at once')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--foreground', '--foreground', [CompletionResultType]::ParameterName, 'Stay in the foreground (for systemd, launchd and tests)')
            [CompletionResult]::new('--allow-remote', '--allow-remote', [CompletionResultType]::ParameterName, 'Allow listening on non-loopback addresses')
            [CompletionResult]::new('--ssh-agent', '--ssh-agent', [CompletionResultType]::ParameterName, 'Ad-hoc mode: use ssh-agent ($SSH_AUTH_SOCK)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;exec' {
            [CompletionResult]::new('--document', '--document', [CompletionResultType]::ParameterName, 'A separate-output session document (see --install-document); default: the config''s exec.document, else AWS-StartNonInteractiveCommand (merged output, wrapped)')
            [CompletionResult]::new('--install-document', '--install-document', [CompletionResultType]::ParameterName, 'Create the separate-output session document NAME [default: SessionProxy-Exec] in the account (ssm:CreateDocument), or confirm it is there, and say how to use it')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile (default: the alias''s, else AWS_PROFILE or the default profile)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region (default: the alias''s, else AWS_REGION or the profile''s region)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--raw', '--raw', [CompletionResultType]::ParameterName, 'Send the command as is: no `sh -c`, no end marker (exit status unknown: exit 0)')
            [CompletionResult]::new('-t', '-t', [CompletionResultType]::ParameterName, 'Run the command in a pty on the target (AWS-StartInteractiveCommand), stdin as typed')
            [CompletionResult]::new('--tty', '--tty', [CompletionResultType]::ParameterName, 'Run the command in a pty on the target (AWS-StartInteractiveCommand), stdin as typed')
            [CompletionResult]::new('-i', '-i', [CompletionResultType]::ParameterName, 'Forward stdin to the command, with EOF (like `docker exec -i`; the command runs in a pty, stdout and stderr merged)')
            [CompletionResult]::new('--stdin', '--stdin', [CompletionResultType]::ParameterName, 'Forward stdin to the command, with EOF (like `docker exec -i`; the command runs in a pty, stdout and stderr merged)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help (see more with ''--help'')')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;demo' {
            [CompletionResult]::new('--listen', '--listen', [CompletionResultType]::ParameterName, 'SOCKS5 listen address (loopback). Default: 127.0.0.1:1080, or the next free port up to 1099')
            [CompletionResult]::new('--state-dir', '--state-dir', [CompletionResultType]::ParameterName, 'Directory for the demo keys, known_hosts, env file and ssh_config (default: $XDG_STATE_HOME/session-proxy/demo)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;status' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print the report as JSON (errors in full; the table shortens LAST ERROR)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;connect' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;disconnect' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;reload' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;stop' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;route' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;ssh-config' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile for the ProxyCommand (default: each alias''s, else AWS_PROFILE or the default profile)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region for the ProxyCommand (default: each alias''s, else AWS_REGION or the profile''s)')
            [CompletionResult]::new('--write', '--write', [CompletionResultType]::ParameterName, 'Write the snippet to this file (atomically, mode 0644), e.g. ~/.ssh/config.d/session-proxy, and print the `Include` line ~/.ssh/config needs. The user''s own ~/.ssh/config is never changed')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--send-key', '--send-key', [CompletionResultType]::ParameterName, 'Make the ProxyCommand push your public key with EC2 Instance Connect before each login (`stdio --send-key --os-user %r`), for instances that have no key of yours')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;instances' {
            [CompletionResult]::new('--filter', '--filter', [CompletionResultType]::ParameterName, 'A DescribeInstanceInformation filter KEY=VALUE[,VALUE...], e.g. `tag:Env=prod`, `tag-key=Team`, `PlatformTypes=Linux` (repeatable: all must match, values are OR-ed)')
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile (default: the config''s `aws.profile`, else AWS_PROFILE or the default)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region (default: the config''s `aws.region`, else AWS_REGION or the profile''s)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--online', '--online', [CompletionResultType]::ParameterName, 'Only instances whose agent is connected (PingStatus Online)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON array (fields: id, name, ping_status, platform, agent_version, ip_address, computer_name, last_ping, aliases, upstreams) instead of the table')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;doctor' {
            [CompletionResult]::new('--profile', '--profile', [CompletionResultType]::ParameterName, 'AWS profile (default: the alias''s, the config''s `aws.profile`, else AWS_PROFILE or the default)')
            [CompletionResult]::new('--region', '--region', [CompletionResultType]::ParameterName, 'AWS region (default: the alias''s, the config''s `aws.region`, else AWS_REGION or the profile''s)')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('--json', '--json', [CompletionResultType]::ParameterName, 'Print one JSON object {"ok": bool, "checks": [{name, status, detail, fix}]} instead of the text')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;generate' {
            [CompletionResult]::new('--completions', '--completions', [CompletionResultType]::ParameterName, 'Directory for completions (bash, zsh, fish, elvish, powershell)')
            [CompletionResult]::new('--man', '--man', [CompletionResultType]::ParameterName, 'Directory for man pages')
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;completions' {
            [CompletionResult]::new('--config', '--config', [CompletionResultType]::ParameterName, 'Configuration file (default: ./config.yaml, then the XDG config dir)')
            [CompletionResult]::new('--control-socket', '--control-socket', [CompletionResultType]::ParameterName, 'Control socket of the master (default: the config''s control_socket, else $XDG_RUNTIME_DIR/session-proxy/control.sock)')
            [CompletionResult]::new('-v', '-v', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('--verbose', '--verbose', [CompletionResultType]::ParameterName, 'More logging on stderr (-v info, -vv debug, -vvv trace)')
            [CompletionResult]::new('-q', '-q', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('--quiet', '--quiet', [CompletionResultType]::ParameterName, 'Only errors on stderr')
            [CompletionResult]::new('-h', '-h', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('--help', '--help', [CompletionResultType]::ParameterName, 'Print help')
            [CompletionResult]::new('-V', '-V ', [CompletionResultType]::ParameterName, 'Print version')
            [CompletionResult]::new('--version', '--version', [CompletionResultType]::ParameterName, 'Print version')
            break
        }
        'session-proxy;help' {
            [CompletionResult]::new('stdio', 'stdio', [CompletionResultType]::ParameterValue, 'Bridge stdin/stdout to a port on an instance (use as OpenSSH ProxyCommand)')
            [CompletionResult]::new('shell', 'shell', [CompletionResultType]::ParameterValue, 'Open an interactive shell on an instance (like `aws ssm start-session`)')
            [CompletionResult]::new('forward', 'forward', [CompletionResultType]::ParameterValue, 'Forward local ports to hosts the instance reaches (`ssh -L` over SSM port sessions)')
            [CompletionResult]::new('sim', 'sim', [CompletionResultType]::ParameterValue, 'Run a local simulator of the AWS side of Session Manager (no AWS account needed)')
            [CompletionResult]::new('serve', 'serve', [CompletionResultType]::ParameterValue, 'SOCKS5 (and HTTP CONNECT) proxy routing destinations to SSH-over-SSM bastion pools, direct, or reject')
            [CompletionResult]::new('exec', 'exec', [CompletionResultType]::ParameterValue, 'Run a command on an instance: its output on stdout, its exit status as ours')
            [CompletionResult]::new('demo', 'demo', [CompletionResultType]::ParameterValue, 'Try it without AWS: simulator + demo instance + SOCKS5 proxy in one process')
            [CompletionResult]::new('status', 'status', [CompletionResultType]::ParameterValue, 'Show the running master''s upstreams, forwards, connections and traffic (exits 68 while an upstream is down)')
            [CompletionResult]::new('connect', 'connect', [CompletionResultType]::ParameterValue, 'Bring an upstream of the running master up and wait for a ready connection, or start a forward again')
            [CompletionResult]::new('disconnect', 'disconnect', [CompletionResultType]::ParameterValue, 'Close an upstream''s SSM sessions (its destinations get "host unreachable"), or stop a forward (its listener and sessions)')
            [CompletionResult]::new('reload', 'reload', [CompletionResultType]::ParameterValue, 'Make the running master re-read its config and apply what changed')
            [CompletionResult]::new('stop', 'stop', [CompletionResultType]::ParameterValue, 'Stop the running master (drain, terminate every SSM session)')
            [CompletionResult]::new('route', 'route', [CompletionResultType]::ParameterValue, 'Show which route, upstream or default a destination takes (asks the running master)')
            [CompletionResult]::new('ssh-config', 'ssh-config', [CompletionResultType]::ParameterValue, 'Print an ssh_config snippet (or write it with --write) so `ssh i-…` and `ssh <alias>` go through Session Manager')
            [CompletionResult]::new('instances', 'instances', [CompletionResultType]::ParameterValue, 'List the managed instances Session Manager reaches, with the config aliases and upstreams that point at each')
            [CompletionResult]::new('doctor', 'doctor', [CompletionResultType]::ParameterValue, 'Check config, credentials, region, endpoint, permissions, a target, the master and ssh, naming the fix for each failure')
            [CompletionResult]::new('generate', 'generate', [CompletionResultType]::ParameterValue, 'Write shell completions and man pages')
            [CompletionResult]::new('completions', 'completions', [CompletionResultType]::ParameterValue, 'Print the completion script for a shell (`source <(session-proxy completions bash)`)')
            [CompletionResult]::new('help', 'help', [CompletionResultType]::ParameterValue, 'Print this message or the help of the given subcommand(s)')
            break
        }
        'session-proxy;help;stdio' {
            break
        }
        'session-proxy;help;shell' {
            break
        }
        'session-proxy;help;forward' {
            break
        }
        'session-proxy;help;sim' {
            break
        }
        'session-proxy;help;serve' {
            break
        }
        'session-proxy;help;exec' {
            break
        }
        'session-proxy;help;demo' {
            break
        }
        'session-proxy;help;status' {
            break
        }
        'session-proxy;help;connect' {
            break
        }
        'session-proxy;help;disconnect' {
            break
        }
        'session-proxy;help;reload' {
            break
        }
        'session-proxy;help;stop' {
            break
        }
        'session-proxy;help;route' {
            break
        }
        'session-proxy;help;ssh-config' {
            break
        }
        'session-proxy;help;instances' {
            break
        }
        'session-proxy;help;doctor' {
            break
        }
        'session-proxy;help;generate' {
            break
        }
        'session-proxy;help;completions' {
            break
        }
        'session-proxy;help;help' {
            break
        }
    })

    $completions.Where{ $_.CompletionText -like "$wordToComplete*" } |
        Sort-Object -Property ListItemText
}
